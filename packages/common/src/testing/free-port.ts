import fs from 'node:fs';
import net from 'node:net';

/**
 * Ports for tests' servers (redis-server, the services started as processes,
 * the multi-host pool), chosen before anything listens on them.
 *
 * Drawing port 0 from the kernel is not enough: a port is only reserved once
 * its server listens, so meanwhile the kernel may offer the same number to
 * this process again (a multi-host run once gave scheduler-sync's admin port
 * to the forwarder's route listener, and scheduler-sync died with
 * EADDRINUSE), to another jest worker, or to an outgoing connection as its
 * local port (which also takes the port of a Redis a test killed, before the
 * test restarts it there). So each process draws from a slice of its own,
 * below the kernel's ephemeral range: jest worker N from slice N, a process
 * outside jest (the bench, the chaos pool) from slice 0. It walks its slice
 * in order, skipping ports something listens on, so the last
 * {@link PORT_SLICE_SIZE} ports it handed out are all different. Where there is
 * no room below the ephemeral range, it falls back to the kernel's draw.
 */
export const PORT_SLICE_SIZE = 400;
/** Where the slices start: above the ports well-known services use. */
export const PORT_SLICES_FROM = 15_000;

/** The ports of process slice `slice`, or null when they would reach `ephemeralFrom`. */
export function portSlice(slice: number, ephemeralFrom: number): { from: number; to: number } | null {
  const from = PORT_SLICES_FROM + slice * PORT_SLICE_SIZE;
  const to = from + PORT_SLICE_SIZE - 1;
  return Number.isInteger(slice) && slice >= 0 && to < ephemeralFrom ? { from, to } : null;
}

/** The first port of the kernel's ephemeral range (`ip_local_port_range`), or null where it cannot be read. */
export function ephemeralRangeStart(read: () => string = readPortRange): number | null {
  try {
    const first = Number(read().trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 ? first : null;
  } catch {
    return null;
  }
}

function readPortRange(): string {
  return fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
}

/**
 * Walks `slice` from a starting point, wrapping around, and returns the first
 * port `isFree` accepts; throws when none of the slice's ports is free.
 */
export class SlicePorts {
  private next: number;

  constructor(
    private readonly slice: { from: number; to: number },
    start: number,
    private readonly isFree: (port: number) => Promise<boolean>,
  ) {
    const size = slice.to - slice.from + 1;
    this.next = slice.from + (((start % size) + size) % size);
  }

  async take(): Promise<number> {
    const size = this.slice.to - this.slice.from + 1;
    for (let tried = 0; tried < size; tried += 1) {
      const port = this.next;
      this.next = port === this.slice.to ? this.slice.from : port + 1;
      if (await this.isFree(port)) return port;
    }
    throw new Error(`no free port in ${this.slice.from}-${this.slice.to}`);
  }
}

/** The first port `draw` gives that is not in `taken`, added to it (the kernel fallback's guard). */
export async function distinctPort(draw: () => Promise<number>, taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await draw();
    if (taken.has(port)) continue;
    taken.add(port);
    return port;
  }
}

/** Whether 127.0.0.1:`port` can be listened on now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(false) : reject(err),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** This process's slice: jest worker N's is N (`JEST_WORKER_ID`), any other process's 0. */
function processSlice(): number {
  const worker = Number(process.env.JEST_WORKER_ID ?? '0');
  return Number.isInteger(worker) && worker >= 0 ? worker : 0;
}

let ports: SlicePorts | null | undefined;
const handedOut = new Set<number>();

/** A TCP port free on 127.0.0.1 that this process has not handed out lately (see above). */
export async function freePort(): Promise<number> {
  if (ports === undefined) {
    const ephemeralFrom = ephemeralRangeStart();
    const slice = ephemeralFrom === null ? null : portSlice(processSlice(), ephemeralFrom);
    // Processes sharing slice 0 (two outside jest) start at different points of it.
    ports = slice && new SlicePorts(slice, process.pid, canListen);
  }
  return ports ? ports.take() : distinctPort(kernelPort, handedOut);
}
