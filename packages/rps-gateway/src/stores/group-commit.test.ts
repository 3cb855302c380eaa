import { GroupCommit } from './group-commit';

/** A `send` whose batches are answered by hand, in any order. */
function manualSend() {
  const batches: Array<{ items: string[]; answer(r: Array<string | Error>): void; fail(e: unknown): void }> =
    [];
  const send = (items: string[]) =>
    new Promise<Array<string | Error>>((resolve, reject) => {
      batches.push({ items, answer: resolve, fail: reject });
    });
  return { batches, send };
}

const turn = () => new Promise((r) => setImmediate(r));
const options = { maxItems: 3, maxBytes: 10, sizeOf: (s: string) => s.length, maxInFlight: 1 };

describe('GroupCommit', () => {
  it('when items arrive in one turn then they go as one batch and each gets its own result', async () => {
    const { batches, send } = manualSend();
    const group = new GroupCommit(send, options);
    const results = [group.run('a'), group.run('b')];
    expect(batches).toHaveLength(0); // sent at the end of the turn, not at once
    await turn();
    expect(batches.map((b) => b.items)).toEqual([['a', 'b']]);
    batches[0]!.answer(['A', 'B']);
    await expect(Promise.all(results)).resolves.toEqual(['A', 'B']);
  });

  it('when items arrive while a batch is in flight then they wait and go together after it', async () => {
    const { batches, send } = manualSend();
    const group = new GroupCommit(send, options);
    const first = group.run('a');
    await turn();
    const later = [group.run('b'), group.run('c')];
    await turn();
    expect(batches).toHaveLength(1);
    expect(group.waiting).toBe(2);
    batches[0]!.answer(['A']);
    await first;
    await turn();
    expect(batches.map((b) => b.items)).toEqual([['a'], ['b', 'c']]);
    batches[1]!.answer(['B', 'C']);
    await expect(Promise.all(later)).resolves.toEqual(['B', 'C']);
  });

  it('when more items wait than a batch holds then they are split by count and by bytes', async () => {
    const { batches, send } = manualSend();
    const group = new GroupCommit(send, { ...options, maxInFlight: 3 });
    const all = ['a', 'b', 'c', 'd', 'eeeeee', 'ffff', 'g'].map((s) => group.run(s));
    await turn();
    // 3 items at most; 10 bytes at most ('d' + 'eeeeee' = 7, + 'ffff' = 11 > 10).
    expect(batches.map((b) => b.items)).toEqual([
      ['a', 'b', 'c'],
      ['d', 'eeeeee'],
      ['ffff', 'g'],
    ]);
    batches.forEach((b) => b.answer(b.items.map((s) => s.toUpperCase())));
    await expect(Promise.all(all)).resolves.toEqual(['A', 'B', 'C', 'D', 'EEEEEE', 'FFFF', 'G']);
  });

  it('when an item is as large as a whole batch then it is sent alone at once, beside the batch in flight', async () => {
    const { batches, send } = manualSend();
    const group = new GroupCommit(send, options);
    const small = group.run('a');
    await turn();
    const big = group.run('x'.repeat(10));
    expect(batches.map((b) => b.items)).toEqual([['a'], ['x'.repeat(10)]]);
    batches[1]!.answer(['BIG']);
    await expect(big).resolves.toBe('BIG');
    // The big one never counted as in flight: a new small item still waits only for 'a'.
    const next = group.run('b');
    await turn();
    expect(batches).toHaveLength(2);
    batches[0]!.answer(['A']);
    await small;
    await turn();
    batches[2]!.answer(['B']);
    await expect(next).resolves.toBe('B');
  });

  it('when the answer holds an Error for one item then only that item fails', async () => {
    const { batches, send } = manualSend();
    const group = new GroupCommit(send, options);
    const [a, b, c] = ['a', 'b', 'c'].map((s) => group.run(s));
    await turn();
    batches[0]!.answer(['A', new Error('job not added'), 'C']);
    await expect(a).resolves.toBe('A');
    await expect(b).rejects.toThrow('job not added');
    await expect(c).resolves.toBe('C');
  });

  it('when send rejects or throws then every item of the batch fails with its error, and the next batch still goes', async () => {
    const { batches, send } = manualSend();
    const group = new GroupCommit(send, options);
    const [a, b] = ['a', 'b'].map((s) => group.run(s));
    await turn();
    const c = group.run('c');
    batches[0]!.fail(new Error('connection closed'));
    await expect(a).rejects.toThrow('connection closed');
    await expect(b).rejects.toThrow('connection closed');
    await turn();
    batches[1]!.answer(['C']);
    await expect(c).resolves.toBe('C');

    const throwing = new GroupCommit<string, string>(() => {
      throw new Error('not connected');
    }, options);
    await expect(throwing.run('a')).rejects.toThrow('not connected');
  });

  it('when the answer has the wrong number of results then every item fails instead of getting another item’s result', async () => {
    const { batches, send } = manualSend();
    const group = new GroupCommit(send, options);
    const [a, b] = ['a', 'b'].map((s) => group.run(s));
    await turn();
    batches[0]!.answer(['A']);
    await expect(a).rejects.toThrow('batch of 2 answered with 1 results');
    await expect(b).rejects.toThrow('batch of 2 answered with 1 results');
  });
});
