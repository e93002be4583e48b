/** kiln cp SRC DST — either side may be ID:/path (files; use tar through exec for trees). */
import type { Command } from 'commander';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { fail } from '../output.js';
import { clientFrom } from './sandbox.js';

const REMOTE = /^(sb-(?:[0-9a-f]{32}|[0-9a-f]{12})):(\/.*)$/;

export function registerCpCommand(program: Command): void {
  program
    .command('cp <src> <dst>')
    .description('copy a file between the host and a sandbox: either side may be ID:/path; - is stdin/stdout; missing parent directories in the sandbox are created')
    .action(async (src: string, dst: string, _o: unknown, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        const rs = REMOTE.exec(src);
        const rd = REMOTE.exec(dst);
        if (rs && rd) throw new Error('copy between two sandboxes is not supported: copy through the host');
        if (!rs && !rd) throw new Error('one side of kiln cp must be ID:/path');
        if (rd) {
          const [, id, path] = rd as unknown as [string, string, string];
          let mode: number | undefined;
          if (src !== '-') {
            const st = statSync(src);
            if (st.isDirectory()) throw new Error(`${src} is a directory; kiln cp copies files (pipe a tar through kiln exec -i for trees)`);
            mode = st.mode & 0o777;
          }
          const r = await client.upload(id, path, src === '-' ? process.stdin : createReadStream(src), { ...(mode === undefined ? {} : { mode }), parents: true });
          process.stderr.write(`${r.bytes} bytes → ${id}:${path} (sha256 ${r.sha256})\n`);
        } else if (rs) {
          const [, id, path] = rs as unknown as [string, string, string];
          const res = await client.download(id, path);
          await pipeline(res, dst === '-' ? process.stdout : createWriteStream(dst));
        }
      } catch (err) {
        fail(err);
      }
    });
}
