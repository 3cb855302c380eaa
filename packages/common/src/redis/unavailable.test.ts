import { redisUnavailableReason } from './unavailable';

// Messages as ioredis, Redis 7 and BullMQ produce them (seen against a real
// redis-server: kill, restart, maxmemory + noeviction, DEBUG SLEEP).
const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

describe('redisUnavailableReason', () => {
  it.each([
    [new Error("Stream isn't writeable and enableOfflineQueue options is false"), 'connection'],
    [new Error('Connection is closed.'), 'connection'],
    [new Error('Command aborted due to connection close'), 'connection'],
    [
      Object.assign(new Error('Reached the max retries per request limit (which is 1).'), {
        name: 'MaxRetriesPerRequestError',
      }),
      'connection',
    ],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }), 'connection'],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'connection'],
    [new Error('Command timed out'), 'timeout'],
    [reply('LOADING Redis is loading the dataset in memory'), 'loading'],
    [
      reply('MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist'),
      'persistence',
    ],
    [reply("OOM command not allowed when used memory > 'maxmemory'."), 'memory'],
    [
      reply("OOM command not allowed when used memory > 'maxmemory'. script: 5ab4, on @user_script:589."),
      'memory',
    ],
    [reply('ERR Error running script (call to f_ab): @user_script:1: OOM command not allowed'), 'memory'],
    [reply('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.'), 'busy'],
    [reply("READONLY You can't write against a read only replica."), 'readonly'],
  ])('when the error is %p then the reason is %p', (err, reason) => {
    expect(redisUnavailableReason(err)).toBe(reason);
  });

  it.each([
    [reply('ERR wrong number of arguments for command')],
    [reply('WRONGTYPE Operation against a key holding the wrong kind of value')],
    [new Error('Missing key for job 7. moveToFinished')],
    [new TypeError('x is undefined')],
    ['a string'],
    [null],
  ])('when the error is %p then it is not an unavailability', (err) => {
    expect(redisUnavailableReason(err)).toBeNull();
  });
});
