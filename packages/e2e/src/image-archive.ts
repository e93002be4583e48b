/**
 * A docker-archive (`docker save` format) made on the host without Docker: one layer (a tar of
 * `tree`), an image config and manifest.json. For `kiln template build --from FILE` tests.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function dockerArchive(tree: string, out: string, o: { tag: string; cmd: string[]; env?: string[]; workdir?: string }): void {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-it-archive-'));
  try {
    mkdirSync(join(dir, 'layer'));
    execFileSync('tar', ['-c', '--numeric-owner', '--owner=0', '--group=0', '-f', join(dir, 'layer/layer.tar'), '-C', tree, '.']);
    const diffId = createHash('sha256').update(readFileSync(join(dir, 'layer/layer.tar'))).digest('hex');
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: o.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: o.cmd, WorkingDir: o.workdir ?? '' },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created_by: 'kiln e2e' }],
    });
    const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
    writeFileSync(join(dir, configName), config);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [o.tag], Layers: ['layer/layer.tar'] }]));
    execFileSync('tar', ['-c', '-f', out, '-C', dir, 'manifest.json', configName, 'layer/layer.tar']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A minimal root: the host's static busybox and links for `applets`. */
export function busyboxTree(dir: string, applets: string[]): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  execFileSync('cp', [execFileSync('sh', ['-c', 'command -v busybox']).toString().trim(), join(dir, 'bin/busybox')]);
  for (const a of applets) execFileSync('ln', ['-s', 'busybox', join(dir, 'bin', a)]);
}
