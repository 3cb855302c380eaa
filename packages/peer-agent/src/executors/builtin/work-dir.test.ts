import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeRunDir } from './work-dir';

// A run's folder goes once its job has ended: all of it, whatever the job
// left there, and nothing outside it (a symlink the job made is removed, not
// followed). A small folder goes at once, without the thread pool.
describe('removeRunDir', () => {
  let base: string;
  beforeEach(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'rps-workdir-'));
  });
  afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

  /** A run folder with `files` files spread over nested folders, and symlinks out of it. */
  function runFolder(files: number): { dir: string; outside: string } {
    const dir = path.join(base, 'runs', '7-1');
    const outside = path.join(base, 'outside');
    fs.mkdirSync(path.join(outside, 'kept'), { recursive: true });
    fs.writeFileSync(path.join(outside, 'kept', 'file'), 'not the run');
    fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
    for (let i = 0; i < files; i++) {
      fs.writeFileSync(path.join(dir, i % 3 === 0 ? 'a' : i % 3 === 1 ? 'a/b' : '.', `f${i}`), 'x');
    }
    fs.symlinkSync(path.join(outside, 'kept'), path.join(dir, 'a', 'to-dir'));
    fs.symlinkSync(path.join(outside, 'kept', 'file'), path.join(dir, 'to-file'));
    fs.symlinkSync(path.join(base, 'nowhere'), path.join(dir, 'dangling'));
    return { dir, outside };
  }

  it('when the folder is small then it is gone before the call returns, and what its links point to stays', async () => {
    const { dir, outside } = runFolder(5);
    const removing = removeRunDir(dir);
    expect(fs.existsSync(dir)).toBe(false);
    await removing;
    expect(fs.readFileSync(path.join(outside, 'kept', 'file'), 'utf8')).toBe('not the run');
    expect(fs.readdirSync(path.join(base, 'runs'))).toEqual([]);
  });

  it('when the folder is larger than the synchronous walk takes then it is still removed whole', async () => {
    const { dir, outside } = runFolder(200);
    const removing = removeRunDir(dir);
    // Past the walk's budget nothing was removed synchronously: fs.rm does it all.
    expect(fs.existsSync(path.join(dir, 'a', 'b'))).toBe(true);
    await removing;
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readFileSync(path.join(outside, 'kept', 'file'), 'utf8')).toBe('not the run');
  });

  it('when the folder is already gone then the removal succeeds', async () => {
    await expect(removeRunDir(path.join(base, 'runs', 'never-made'))).resolves.toBeUndefined();
  });

  it('when the folder is a symlink then the link goes and its target stays', async () => {
    const { outside } = runFolder(1);
    const link = path.join(base, 'runs', 'link');
    fs.symlinkSync(path.join(outside, 'kept'), link);
    await removeRunDir(link);
    expect(fs.existsSync(link)).toBe(false);
    expect(fs.existsSync(path.join(outside, 'kept', 'file'))).toBe(true);
  });
});
