import { failureOutput } from '@rps/common';
import { gonePeerReason, lostPeerReason } from './liveness.service';

const peer = { id: 'peer-2', exists: true, state: 'lost', heartbeatAt: 1000, record: null };

describe('failure texts shown in IVIS', () => {
  it('when a peer is lost then the reason names it and how long it was silent', () => {
    expect(lostPeerReason('peer-2', 15_400)).toBe('peer peer-2 lost: no heartbeat for 15 s');
    expect(gonePeerReason(peer, 21_000)).toBe('peer peer-2 lost: no heartbeat for 20 s');
  });

  it('when a peer was removed or is unregistered then the reason says so', () => {
    expect(gonePeerReason({ ...peer, state: 'removed' }, 0)).toBe('peer peer-2 was removed');
    expect(gonePeerReason({ ...peer, exists: false, state: '' }, 0)).toBe(
      'peer peer-2 is gone (no registration)',
    );
  });

  it('when a failure is pushed then the output follows the RJR layout: error, blank line, Log:, output', () => {
    expect(failureOutput('peer peer-2 lost', 'step 1\n')).toBe('peer peer-2 lost\n\nLog:\nstep 1\n');
  });
});
