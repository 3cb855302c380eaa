import fs from 'node:fs/promises';
import path from 'node:path';

/** What a task's build was made from (ivis-protocol.md 6.1: the RJR's task_build_cache row). */
export interface BuildKey {
  type: string;
  subtype: string;
  /** sha512 (hex) of the archive bytes. */
  hash: string;
}

/**
 * The build cache: taskId -> what its directory was built from, in one JSON
 * file in the work dir so it survives agent restarts. Writes are serialised
 * and atomic (temp file + rename): a crash leaves the old or the new file.
 */
export class BuildCache {
  private entries: Map<number, BuildKey> | undefined;
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly file: string) {}

  async matches(taskId: number, key: BuildKey): Promise<boolean> {
    const entry = (await this.load()).get(taskId);
    return (
      entry !== undefined &&
      entry.type === key.type &&
      entry.subtype === key.subtype &&
      entry.hash === key.hash
    );
  }

  async set(taskId: number, key: BuildKey): Promise<void> {
    (await this.load()).set(taskId, key);
    await this.save();
  }

  async remove(taskId: number): Promise<void> {
    if ((await this.load()).delete(taskId)) await this.save();
  }

  private async load(): Promise<Map<number, BuildKey>> {
    if (this.entries) return this.entries;
    let parsed: Record<string, BuildKey> = {};
    try {
      parsed = JSON.parse(await fs.readFile(this.file, 'utf8')) as Record<string, BuildKey>;
    } catch {
      // Missing or unreadable: every task is rebuilt, which is always safe.
    }
    this.entries ??= new Map(Object.entries(parsed).map(([id, key]) => [Number(id), key]));
    return this.entries;
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify(Object.fromEntries(this.entries ?? []), null, 2);
    // One agent owns a work dir and serialises its writes, so one temp name is enough.
    const write = this.writes
      .catch(() => undefined)
      .then(async () => {
        await fs.mkdir(path.dirname(this.file), { recursive: true });
        const tmp = `${this.file}.tmp`;
        await fs.writeFile(tmp, snapshot, { mode: 0o600 });
        await fs.rename(tmp, this.file);
      });
    this.writes = write;
    return write;
  }
}
