import net from 'node:net';

/**
 * Addresses as 128-bit integers, IPv4 mapped into `::ffff:0:0/96` (RFC 4291
 * 2.5.5.2). One number space makes `10.0.0.1`, `::ffff:10.0.0.1` (what a
 * dual-stack listener reports for an IPv4 client) and `::ffff:a00:1` the same
 * key, and lets one prefix test serve IPv4 and IPv6 ranges alike.
 */
const IPV4_MAPPED = 0xffffn << 32n;
const ALL_ONES = (1n << 128n) - 1n;

function ipv4ToBigInt(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6ToBigInt(text: string): bigint {
  // An embedded dotted quad (`::ffff:1.2.3.4`) stands for the last two groups.
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  let groups = text;
  if (last.includes('.')) {
    const v4 = ipv4ToBigInt(last);
    groups = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = groups.split('::');
  const parseList = (list: string) => (list === '' ? [] : list.split(':').map((g) => BigInt(`0x${g}`)));
  const front = parseList(head);
  const back = rest === undefined ? [] : parseList(rest);
  const zeros = Array<bigint>(8 - front.length - back.length).fill(0n);
  return [...front, ...zeros, ...back].reduce((acc, g) => (acc << 16n) | g, 0n);
}

/**
 * Parses an IPv4 or IPv6 literal (zone id ignored) into its 128-bit key;
 * null when it is not an address.
 */
export function addressKey(text: string): bigint | null {
  const address = text.split('%')[0] ?? '';
  const kind = net.isIP(address);
  if (kind === 4) return IPV4_MAPPED | ipv4ToBigInt(address);
  if (kind === 6) return ipv6ToBigInt(address);
  return null;
}

/** The address as people write it: IPv4-mapped IPv6 shown as plain IPv4. */
export function displayAddress(text: string): string {
  return text.startsWith('::ffff:') && net.isIPv4(text.slice(7)) ? text.slice(7) : text;
}

/** One parsed range. */
export interface Cidr {
  readonly text: string;
  readonly base: bigint;
  readonly prefix: number;
}

/** Parses `a.b.c.d/n`, `x::y/n` or a bare address (a single-host range); throws on anything else. */
export function parseCidr(text: string): Cidr {
  const [address = '', length, extra] = text.trim().split('/');
  const key = addressKey(address);
  if (key === null || extra !== undefined || address.includes('%')) {
    throw new Error(`"${text}" is not an IPv4 or IPv6 CIDR`);
  }
  const v4 = net.isIPv4(address);
  const max = v4 ? 32 : 128;
  const bits = length === undefined ? max : /^\d{1,3}$/.test(length) ? Number(length) : NaN;
  if (!Number.isInteger(bits) || bits < 0 || bits > max) {
    throw new Error(`"${text}" has an invalid prefix length (0-${max})`);
  }
  const prefix = v4 ? bits + 96 : bits;
  return { text, base: key & maskOf(prefix), prefix };
}

function maskOf(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL_ONES << BigInt(128 - prefix)) & ALL_ONES;
}

/** Matches address keys against a fixed list of ranges. */
export class CidrMatcher {
  private readonly ranges: ReadonlyArray<Cidr & { mask: bigint }>;

  /** Throws one error naming every invalid entry, so a bad config fails the start readably. */
  constructor(cidrs: readonly string[]) {
    const problems: string[] = [];
    const ranges: Array<Cidr & { mask: bigint }> = [];
    for (const text of cidrs) {
      try {
        const cidr = parseCidr(text);
        ranges.push({ ...cidr, mask: maskOf(cidr.prefix) });
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (problems.length > 0) throw new Error(`forwarder.allow: ${problems.join('; ')}`);
    this.ranges = ranges;
  }

  /** The first range containing the address, or undefined. */
  match(key: bigint): Cidr | undefined {
    return this.ranges.find((r) => (key & r.mask) === r.base);
  }
}
