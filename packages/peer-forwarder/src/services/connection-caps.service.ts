/** `forwarder.limits.connectionsPer*`. */
export interface CapLimits {
  connectionsPerStranger: number;
  connectionsPerPeer: number;
}

/**
 * Open connections per source address, across all routes: a stranger gets a
 * handful (each only reads its 403), an allowed source more, so that neither
 * many strangers nor one misbehaving peer can take every socket. Keyed by the
 * parsed address (`addressKey`), so `::ffff:10.0.0.2` and `10.0.0.2` share one
 * count.
 */
export class ConnectionCaps {
  private readonly open = new Map<bigint, number>();

  constructor(private readonly limits: CapLimits) {}

  /** Counts a new connection; false (not counted) when its source is at its cap. */
  admit(key: bigint, allowed: boolean): boolean {
    const count = this.open.get(key) ?? 0;
    if (count >= (allowed ? this.limits.connectionsPerPeer : this.limits.connectionsPerStranger))
      return false;
    this.open.set(key, count + 1);
    return true;
  }

  /** A connection counted by admit() closed. */
  release(key: bigint): void {
    const count = this.open.get(key) ?? 0;
    if (count <= 1) this.open.delete(key);
    else this.open.set(key, count - 1);
  }

  /** Open connections of one source (for tests and metrics). */
  count(key: bigint): number {
    return this.open.get(key) ?? 0;
  }
}
