import { Kiln } from '@kiln/sdk';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const kiln = Kiln.connect();
await using sandbox = await kiln.sandboxes.create();

// Single files: text or bytes in, text or bytes out.
await sandbox.files.write('/work/hello.txt', 'hello, kiln\n');
console.log(await sandbox.files.read('/work/hello.txt'));
await sandbox.files.rename('/work/hello.txt', '/work/greeting.txt');
console.log((await sandbox.files.list('/work')).map((e) => `${e.type} ${e.name}`));
console.log((await sandbox.files.stat('/work/greeting.txt')).size, 'bytes');
await sandbox.files.mkdir('/work/empty');
await sandbox.files.remove('/work/empty');

// Directories travel as tar streams: pack a local tree, upload, change it in the guest, download.
const local = mkdtempSync(join(tmpdir(), 'kiln-example-'));
mkdirSync(join(local, 'src/nested'), { recursive: true });
writeFileSync(join(local, 'src/nested/data.txt'), 'round trip\n');
const tar = execFileSync('tar', ['-c', '-C', join(local, 'src'), '-f', '-', '.']);
await sandbox.files.uploadDir('/work/project', tar);
await sandbox.exec('echo made in the guest > /work/project/nested/new.txt');
const back = join(local, 'back');
mkdirSync(back);
const chunks: Uint8Array[] = [];
for await (const chunk of await sandbox.files.downloadDir('/work/project')) chunks.push(chunk);
execFileSync('tar', ['-x', '-C', back, '-f', '-'], { input: Buffer.concat(chunks) });
console.log(readFileSync(join(back, 'nested/data.txt'), 'utf8').trim(), '/', readFileSync(join(back, 'nested/new.txt'), 'utf8').trim());
