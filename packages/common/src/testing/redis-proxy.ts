import net from 'node:net';

/**
 * A TCP relay in front of a test Redis, for faults Redis itself cannot
 * stage: a reply lost after the command committed, a connection refused for
 * a while. Everything else passes through unchanged.
 */
export interface RedisProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>/0` */
  readonly url: string;
  /**
   * Arms a cut: once a client has sent a command containing `marker`, the
   * next reply Redis sends that client is thrown away and the connection is
   * dropped (so the command ran, but its caller never hears), and new
   * connections are refused for `refuseMs`. With `deliverReply` the reply
   * still reaches the client and the drop hits its next command instead.
   * With `replyIncluding`, the cut waits for the first reply that contains
   * it (the earlier ones pass): for a command inside a MULTI, whose own
   * reply comes with the EXEC's. Resolves when the cut happened.
   */
  cutAfterReplyTo(
    marker: string,
    options?: { refuseMs?: number; deliverReply?: boolean; replyIncluding?: string },
  ): Promise<void>;
  /**
   * Holds every reply Redis sends to any client from now on (commands still
   * reach Redis and run) until the returned function is called, which
   * delivers them in order: a reply that is late by as long as a test likes.
   */
  holdReplies(): () => void;
  /** Drops every connection now and refuses new ones for `ms`. */
  refuseFor(ms: number): void;
  close(): Promise<void>;
}

/** Starts a relay on a free port to the Redis at `targetPort`. */
export async function startRedisProxy(targetPort: number): Promise<RedisProxy> {
  const sockets = new Set<net.Socket>();
  let refuseUntil = 0;
  let armed: {
    marker: Buffer;
    reply: Buffer | null;
    refuseMs: number;
    deliver: boolean;
    cut: () => void;
  } | null = null;
  /** Replies held by {@link RedisProxy.holdReplies}, in arrival order; null: none held. */
  let held: Array<() => void> | null = null;

  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };

  const server = net.createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let sawMarker = false;
    client.on('data', (chunk: Buffer) => {
      if (armed && chunk.includes(armed.marker)) sawMarker = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (sawMarker && armed && (!armed.reply || chunk.includes(armed.reply))) {
        const { refuseMs, deliver, cut } = armed;
        armed = null;
        if (deliver) client.write(chunk);
        refuseUntil = Date.now() + refuseMs;
        dropAll();
        cut();
        return;
      }
      if (held) held.push(() => client.write(chunk));
      else client.write(chunk);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    cutAfterReplyTo: (marker, options = {}) =>
      new Promise<void>((resolve) => {
        armed = {
          marker: Buffer.from(marker),
          reply: options.replyIncluding === undefined ? null : Buffer.from(options.replyIncluding),
          refuseMs: options.refuseMs ?? 0,
          deliver: options.deliverReply ?? false,
          cut: resolve,
        };
      }),
    holdReplies: () => {
      const mine: Array<() => void> = [];
      held = mine;
      return () => {
        if (held === mine) held = null;
        for (const deliver of mine) deliver();
      };
    },
    refuseFor: (ms) => {
      refuseUntil = Date.now() + ms;
      dropAll();
    },
    close: async () => {
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
