/**
 * A clone's copy-on-write disk: a qcow2 overlay over the template's frozen scratch disk. Every
 * overlay of one template is the same file (qcow2 holds no per-image identity: header, empty
 * L1 and refcount tables, the backing file's path and format), so `qemu-img create` runs once
 * per template and later overlays are that file's bytes written again (~0.2 MB, well under a
 * millisecond, instead of a ~10 ms process on every create).
 */
import { execFile } from 'node:child_process';
import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { KilnError } from '../errors.js';

const run = promisify(execFile);

/** Largest overlay kept in memory; anything bigger is not a fresh overlay and is never reused. */
const MAX_CACHED_BYTES = 4 * 1024 * 1024;

export class OverlayMaker {
  /** Overlay bytes by backing file, its size and mtime (a backing file made anew is a new entry). */
  private readonly cache = new Map<string, Buffer>();

  /** Writes an overlay backed by `backing` (raw) at `path`, which must not exist yet. */
  async create(backing: string, path: string): Promise<void> {
    try {
      const st = await stat(backing);
      const id = `${backing}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
      const cached = this.cache.get(id);
      if (cached) {
        await writeFile(path, cached, { flag: 'wx', mode: 0o600 });
        return;
      }
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', backing, path]);
      await chmod(path, 0o600);
      const bytes = await readFile(path);
      if (bytes.length <= MAX_CACHED_BYTES) this.cache.set(id, bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await rm(path, { force: true });
      throw new KilnError('OVERLAY_FAILED', `could not create the disk overlay ${path} over ${backing}: ${(err as Error).message}`, { cause: err });
    }
  }
}
