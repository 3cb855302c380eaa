import net from 'node:net';
import { createTestPki, startRedisServer, type TestRedisServer } from '@rps/common/testing';
import { ResponseParser, type ResponseHead } from '../src/services/http1.parser';
import {
  echoHandler,
  startForwarder,
  startTlsUpstream,
  type TestForwarder,
  type TlsUpstream,
} from './support/harness';

interface RawAnswer {
  head: ResponseHead;
  body: string;
}

/**
 * A peer speaking raw HTTP/1.1 on one connection: writes exactly the bytes
 * given and reads answers with the project's strict response parser, so
 * framing mistakes (a missing chunk terminator, a stray byte) fail the test.
 */
class RawPeer {
  private readonly socket: net.Socket;
  private readonly received: RawAnswer[] = [];
  private current: { head?: ResponseHead; body: Buffer[] } = { body: [] };
  private waiters: Array<() => void> = [];
  private readonly parser: ResponseParser;
  private readonly methods: string[] = [];
  closed = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.parser = new ResponseParser({
      onHead: (head) => (this.current.head = head),
      onBody: (chunk) => this.current.body.push(Buffer.from(chunk)),
      onComplete: () => {
        this.received.push({ head: this.current.head!, body: Buffer.concat(this.current.body).toString() });
        this.current = { body: [] };
        this.armed = false;
        this.arm();
        for (const wake of this.waiters.splice(0)) wake();
      },
    });
    this.socket.on('data', (d: Buffer) => this.parser.execute(d));
    this.socket.on('end', () => {
      try {
        this.parser.end();
      } catch {
        // an unfinished answer shows up as a missing one
      }
    });
    this.socket.on('close', () => {
      this.closed = true;
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Writes raw bytes; `methods` names the requests they carry (HEAD answers have no body). */
  write(bytes: string, ...methods: string[]): void {
    this.methods.push(...methods);
    this.arm();
    this.socket.write(bytes);
  }

  /** Expects the next answer, to the oldest request not answered yet. */
  private arm(): void {
    const method = this.armed ? undefined : this.methods.shift();
    if (method === undefined) return;
    this.parser.reset(method);
    this.armed = true;
  }

  private armed = false;

  async answers(count: number, timeoutMs = 5000): Promise<RawAnswer[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (this.closed || Date.now() > deadline) break;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.received.slice(0, count);
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const header = (head: ResponseHead, name: string): string | undefined => {
  for (let i = 0; i < head.rawHeaders.length; i += 2)
    if (head.rawHeaders[i]!.toLowerCase() === name) return head.rawHeaders[i + 1];
  return undefined;
};

// The forwarder's fast path (plain requests served on the raw connection) and
// its hand-over to Node's HTTP server for everything else, seen from a peer
// that writes exact bytes.
describe('peer-forwarder fast path', () => {
  const pki = createTestPki();
  let redisServer: TestRedisServer;
  let upstream: TlsUpstream;
  let fwd: TestForwarder;
  const peers: RawPeer[] = [];
  const peer = () => {
    const p = new RawPeer(fwd.ports.trusted!);
    peers.push(p);
    return p;
  };

  beforeAll(async () => {
    redisServer = await startRedisServer();
    upstream = await startTlsUpstream(pki, (req, res, seen) => {
      if (req.url === '/chunked') {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first,');
        setTimeout(() => res.end('second'), 20);
        return;
      }
      echoHandler(req, res, seen);
    });
    fwd = await startForwarder({
      pki,
      redisUrl: redisServer.url,
      routes: { trusted: upstream.url },
      allow: ['127.0.0.0/8'],
    });
  });

  afterEach(() => {
    for (const p of peers.splice(0)) p.destroy();
    upstream.seen.length = 0;
  });

  afterAll(async () => {
    await fwd.close();
    await upstream.close();
    await redisServer.stop();
    pki.cleanup();
  });

  it('when two requests arrive in one write then both are answered, in order, on the same connection', async () => {
    const p = peer();
    p.write(
      'POST /one HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabcGET /two HTTP/1.1\r\nhost: x\r\n\r\n',
      'POST',
      'GET',
    );
    const [one, two] = await p.answers(2);
    expect(JSON.parse(one!.body)).toMatchObject({ path: '/one', bytes: 3 });
    expect(JSON.parse(two!.body)).toMatchObject({ path: '/two', bytes: 0 });
    expect(p.closed).toBe(false);
  });

  it('when a keep-alive connection switches to a chunked upload then Node takes it over and later requests still work', async () => {
    const p = peer();
    p.write('GET /fast HTTP/1.1\r\nhost: x\r\n\r\n', 'GET');
    await p.answers(1);
    p.write(
      'POST /chunked-up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
      'POST',
    );
    p.write('GET /after HTTP/1.1\r\nhost: x\r\n\r\n', 'GET');
    const answers = await p.answers(3);
    expect(answers.map((a) => a.head.statusCode)).toEqual([200, 200, 200]);
    expect(JSON.parse(answers[1]!.body)).toMatchObject({ path: '/chunked-up', bytes: 11 });
    expect(JSON.parse(answers[2]!.body)).toMatchObject({ path: '/after' });
    expect(upstream.seen.map((s) => s.url)).toEqual(['/fast', '/chunked-up', '/after']);
  });

  it('when a body arrives over several writes then it is relayed whole', async () => {
    const p = peer();
    p.write('PUT /doc HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n01234', 'PUT');
    await new Promise((r) => setTimeout(r, 50));
    p.write('56789');
    const [answer] = await p.answers(1);
    expect(JSON.parse(answer!.body)).toMatchObject({ path: '/doc', bytes: 10 });
  });

  it('when a head is split over writes, or is HTTP/1.0, then Node serves it correctly', async () => {
    const split = peer();
    split.write('GET /split HTTP/1.1\r\nho', 'GET');
    await new Promise((r) => setTimeout(r, 50));
    split.write('st: x\r\n\r\n');
    const [first] = await split.answers(1);
    expect(JSON.parse(first!.body)).toMatchObject({ path: '/split' });

    const old = peer();
    old.write('GET /old HTTP/1.0\r\nhost: x\r\n\r\n', 'GET');
    const [answer] = await old.answers(1);
    expect(answer!.head.statusCode).toBe(200);
    expect(JSON.parse(answer!.body)).toMatchObject({ path: '/old' });
  });

  it('when a head is malformed or lacks its Host then Node answers 400 and nothing reaches the upstream', async () => {
    for (const bytes of [
      'GET /bad HTTP/1.1\r\nbad header: x\r\n\r\n',
      'GET /nohost HTTP/1.1\r\naccept: */*\r\n\r\n',
    ]) {
      const p = peer();
      p.write(bytes, 'GET');
      const [answer] = await p.answers(1);
      expect(answer!.head.statusCode).toBe(400);
    }
    expect(upstream.seen).toHaveLength(0);
  });

  it('when the upstream answers chunked then the peer gets the whole body, and a HEAD gets none', async () => {
    const p = peer();
    p.write('GET /chunked HTTP/1.1\r\nhost: x\r\n\r\n', 'GET');
    const [answer] = await p.answers(1);
    expect(answer!.body).toBe('first,second');
    expect(answer!.head.framing.kind).toBe('chunked');
    p.write('HEAD /head HTTP/1.1\r\nhost: x\r\n\r\n', 'HEAD');
    p.write('GET /after-head HTTP/1.1\r\nhost: x\r\n\r\n', 'GET');
    const answers = await p.answers(3);
    expect(answers[1]!.head.statusCode).toBe(200);
    expect(answers[1]!.body).toBe('');
    expect(JSON.parse(answers[2]!.body)).toMatchObject({ path: '/after-head' });
  });

  it('when the peer asks to close then the answer says so and the connection closes', async () => {
    const p = peer();
    p.write('GET /bye HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', 'GET');
    const [answer] = await p.answers(1);
    expect(header(answer!.head, 'connection')).toBe('close');
    expect(await p.waitClosed()).toBe(true);
  });

  it('when the peer half-closes after its request then it still gets the answer', async () => {
    const p = peer();
    p.write('POST /half HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nok', 'POST');
    p.end();
    const [answer] = await p.answers(1);
    expect(JSON.parse(answer!.body)).toMatchObject({ path: '/half', bytes: 2 });
    expect(await p.waitClosed()).toBe(true);
  });

  it('when the peer half-closes in the middle of a body then nothing is relayed and the access log says 499', async () => {
    fwd.logs.length = 0;
    const p = peer();
    p.write('POST /cut HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n01234', 'POST');
    await new Promise((r) => setTimeout(r, 30));
    p.end();
    expect(await p.waitClosed()).toBe(true);
    expect(upstream.seen).toHaveLength(0);
    expect(fwd.logs.filter((l) => l.msg === 'access')).toEqual([
      expect.objectContaining({ path: '/cut', status: 499 }),
    ]);
  });

  it('when a keep-alive answer is sent then it announces the idle timeout', async () => {
    const p = peer();
    p.write('GET /ka HTTP/1.1\r\nhost: x\r\n\r\n', 'GET');
    const [answer] = await p.answers(1);
    expect(header(answer!.head, 'keep-alive')).toMatch(/^timeout=\d+$/);
    expect(header(answer!.head, 'connection')).toBeUndefined();
    expect(header(answer!.head, 'x-upstream-hop')).toBeUndefined();
  });
});
