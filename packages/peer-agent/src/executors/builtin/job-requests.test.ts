import type { RunRequestPush } from '@rps/common';
import { answerJobRequest } from './job-requests';

describe('answerJobRequest', () => {
  const sent: RunRequestPush[] = [];
  const send = async (push: RunRequestPush) => {
    sent.push(push);
    return { ok: 1 };
  };
  beforeEach(() => sent.splice(0));

  it('when a store_state line arrives then IVIS-core gets the line as payload.request and the id is echoed', async () => {
    const line = '{"type":"store_state","state":{"a":1},"id":"x"}';
    expect(await answerJobRequest(line, 5, send)).toEqual({ id: 'x', ok: 1 });
    expect(sent).toEqual([
      { type: 1, payload: { jobId: 5, request: { type: 'store_state', state: { a: 1 }, id: 'x' } } },
    ]);
  });

  it('when create_signals has only signals then it is relayed as signalsSpec', async () => {
    await answerJobRequest('{"type":"create_signals","signals":{"s":[]}}', 5, send);
    expect(sent).toEqual([{ type: 0, payload: { jobId: 5, signalsSpec: { s: [] } } }]);
  });

  it('when the line is invalid then the job gets an error object and nothing is sent', async () => {
    expect(await answerJobRequest('nope', 5, send)).toEqual({
      error: expect.stringMatching(/^Request parsing failed/),
    });
    expect(await answerJobRequest('{"type":"store_state","state":null,"id":3}', 5, send)).toEqual({
      id: 3,
      error: expect.stringMatching(/^Invalid request: /),
    });
    expect(await answerJobRequest('[1]', 5, send)).toEqual({
      error: expect.stringMatching(/^Invalid request/),
    });
    expect(sent).toEqual([]);
  });
});
