import { resolveJobIdentity } from './job-user';

describe('resolveJobIdentity', () => {
  const users: Record<string, { uid: number; gid: number }> = {
    'rps-job': { uid: 999, gid: 995 },
    root: { uid: 0, gid: 0 },
    dev: { uid: 1000, gid: 1000 },
  };
  const lookup = (name: string) => users[name] ?? null;
  const config = (runAs: string, allowSameUser = false) => ({ runAs, allowSameUser });

  it('when the agent is root and the user exists then jobs run as that user', () => {
    expect(resolveJobIdentity(config('rps-job'), { uid: 0, gid: 0 }, lookup)).toEqual({
      kind: 'user',
      name: 'rps-job',
      uid: 999,
      gid: 995,
    });
  });

  it('when the agent is root and allowSameUser is set then jobs still run as the job user', () => {
    expect(resolveJobIdentity(config('rps-job', true), { uid: 0, gid: 0 }, lookup).kind).toBe('user');
  });

  it('when the job user is root then the agent refuses, even with allowSameUser', () => {
    expect(() => resolveJobIdentity(config('root', true), { uid: 0, gid: 0 }, lookup)).toThrow(
      'agent.executor.runAs: root has uid or gid 0 (root); jobs never run as root',
    );
  });

  it('when the job user does not exist then the message says how to create it', () => {
    expect(() => resolveJobIdentity(config('nobody-here'), { uid: 0, gid: 0 }, lookup)).toThrow(
      /^agent\.executor\.runAs: user nobody-here does not exist: create it as root: useradd --system/,
    );
  });

  it('when the agent is not root then it refuses unless allowSameUser, and names the way out', () => {
    expect(() => resolveJobIdentity(config('rps-job'), { uid: 1000, gid: 1000 }, lookup)).toThrow(
      /the agent runs as uid 1000, not root, so it cannot run jobs as rps-job: .*allowSameUser: true/,
    );
    expect(() => resolveJobIdentity(config('dev'), { uid: 1000, gid: 1000 }, lookup)).toThrow(
      /dev is the agent's own user, so jobs could read its config and signal it/,
    );
    expect(resolveJobIdentity(config('rps-job', true), { uid: 1000, gid: 1000 }, lookup)).toEqual({
      kind: 'same',
      name: 'rps-job',
      uid: 1000,
      gid: 1000,
    });
  });
});
