import fs from 'node:fs';
import path from 'node:path';

/** A Lua script loaded from its `.lua` file, ready for `redis.defineCommand`. */
export interface LuaScript {
  name: string;
  /** Undefined for a script whose key count varies (`<name>-n.lua`): the caller passes it first. */
  numberOfKeys: number | undefined;
  lua: string;
}

/**
 * Loads `<dir>/<name>-<numberOfKeys>.lua` (STYLE.md rule 5: scripts live in
 * their own files named with their key count; `-n` for a count that varies
 * from call to call, such as a batch's). Both `src/` and `dist/` sit
 * one level below the package root, so callers pass a folder next to them.
 */
export function loadLuaScript(dir: string, name: string): LuaScript {
  const file = fs.readdirSync(dir).find((f) => new RegExp(`^${name}-(\\d+|n)\\.lua$`).test(f));
  if (!file) throw new Error(`lua script ${name}-<keys>.lua not found in ${dir}`);
  const count = /-(\d+|n)\.lua$/.exec(file)?.[1];
  const numberOfKeys = count === 'n' ? undefined : Number(count);
  return { name, numberOfKeys, lua: fs.readFileSync(path.join(dir, file), 'utf8') };
}

/**
 * `host` with the script `included` pasted where its line `--@include <name>`
 * stands, the included script's `#!` line dropped (only a script's first
 * line may carry one): how a composite script reuses another unchanged, as a
 * function whose body the marker is.
 */
export function includeLuaScript(host: string, name: string, included: string): string {
  return host.replace(`--@include ${name}`, () => included.replace(/^#!.*\n/, ''));
}
