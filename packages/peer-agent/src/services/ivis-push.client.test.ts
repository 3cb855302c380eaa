import { isRetryableStatus } from './ivis-push.client';

describe('isRetryableStatus', () => {
  it('when IVIS-core answers 5xx, 408 or 429 then the push is retried, other 4xx never', () => {
    expect([500, 502, 503, 408, 429].map(isRetryableStatus)).toEqual([true, true, true, true, true]);
    expect([400, 403, 404, 413].map(isRetryableStatus)).toEqual([false, false, false, false]);
  });
});
