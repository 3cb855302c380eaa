import type { Job } from 'bullmq';
import pino from 'pino';
import { buildFinalPushes } from '../contracts/final-pushes.contract';
import type { SinglePush } from '../contracts/run.contract';
import { createPushJobProcessor } from './push-processor';

class Refused extends Error {}

function fakeJob(data: unknown, progress = 0) {
  const job = {
    id: 'final-7-1',
    data,
    progress,
    attemptsMade: 0,
    updateProgress: async (value: number) => {
      job.progress = value;
    },
  };
  return job;
}

const stop = buildFinalPushes({
  runId: 7,
  execution: 1,
  event: 'stop',
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:05.000Z',
  output: 'out\n',
  errMsg: 'Run Cancelled\n',
});

function setup(fail: (push: SinglePush, call: number) => 'retry' | 'refuse' | null) {
  const sent: string[] = [];
  const givenUp: string[] = [];
  let calls = 0;
  const processor = createPushJobProcessor({
    sender: {
      send: async (push) => {
        const outcome = fail(push, ++calls);
        if (outcome === 'retry') throw new Error('503');
        if (outcome === 'refuse') throw new Refused('400');
        sent.push(push.kind === 'status' ? `status:${push.body.status.status}` : String(push.body.type));
      },
      isFinal: (err) => err instanceof Refused,
    },
    logger: pino({ level: 'silent' }),
    onGivenUp: (kind) => givenUp.push(kind),
  });
  return {
    sent,
    givenUp,
    run: (job: ReturnType<typeof fakeJob>) => processor(job as unknown as Job<unknown, string>, 'token'),
  };
}

describe('createPushJobProcessor', () => {
  it('when a run stop sequence is processed then the status goes first, then the fail and stop emits', async () => {
    const { sent, run } = setup(() => null);
    await run(fakeJob(stop.data));
    expect(sent).toEqual(['status:2', 'run/7/fail', 'run/7/stop']);
  });

  it('when an attempt fails half-way then the retry resumes at the first push not delivered', async () => {
    const { sent, run } = setup((push, call) => (call === 2 ? 'retry' : null));
    const job = fakeJob(stop.data);
    await expect(run(job)).rejects.toThrow('503');
    expect(job.progress).toBe(1);
    await run(job);
    expect(sent).toEqual(['status:2', 'run/7/fail', 'run/7/stop']);
  });

  it('when IVIS-core refuses one push of a sequence then it is given up and the others still go out', async () => {
    const { sent, givenUp, run } = setup((push) => (push.kind === 'status' ? 'refuse' : null));
    await run(fakeJob(stop.data));
    expect(sent).toEqual(['run/7/fail', 'run/7/stop']);
    expect(givenUp).toEqual(['status']);
  });

  it('when the job data is not a push then the job fails for good', async () => {
    const { run } = setup(() => null);
    await expect(run(fakeJob({ kind: 'nonsense' }))).rejects.toMatchObject({ name: 'UnrecoverableError' });
  });
});
