import fs from 'node:fs';
import path from 'node:path';

/** A Lua script loaded from its `.lua` file, ready for `redis.defineCommand`. */
export interface LuaScript {
  name: string;
  numberOfKeys: number;
  lua: string;
}

/**
 * Loads `<dir>/<name>-<numberOfKeys>.lua` (STYLE.md rule 5: scripts live in
 * their own files named with their key count). Both `src/` and `dist/` sit
 * one level below the package root, so callers pass a folder next to them.
 */
export function loadLuaScript(dir: string, name: string): LuaScript {
  const file = fs.readdirSync(dir).find((f) => new RegExp(`^${name}-(\\d+)\\.lua$`).test(f));
  if (!file) throw new Error(`lua script ${name}-<keys>.lua not found in ${dir}`);
  const numberOfKeys = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
  return { name, numberOfKeys, lua: fs.readFileSync(path.join(dir, file), 'utf8') };
}
