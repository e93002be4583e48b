/**
 * Mounting a hot-plugged volume in the guest, through the agent (as root): wait for the disk at
 * SCSI target `slot` (host:0:slot:0; a rescan if the hot-plug event was missed), then mount it
 * at the path. Read-only attachments mount `ro,noload` (no journal replay: a reader never
 * writes, not even to recover). On destroy a best-effort sync + unmount leaves a clean
 * filesystem for the next holder.
 */
import { KilnError } from '../errors.js';
import type { GuestAgent } from '../sandbox/guest-agent.js';

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

export function mountScript(slot: number, path: string, readOnly: boolean): string {
  const opts = readOnly ? 'ro,noload,nodev,nosuid' : 'nodev,nosuid,noatime';
  return [
    'set -e',
    'modprobe -q virtio_scsi 2>/dev/null || true',
    'modprobe -q sd_mod 2>/dev/null || true',
    'dev=""',
    'i=0',
    'while [ $i -lt 400 ]; do',
    `  for d in /sys/bus/scsi/devices/*:0:${slot}:0/block/*; do [ -e "$d" ] && dev=/dev/\${d##*/}; done`,
    '  [ -n "$dev" ] && [ -b "$dev" ] && break',
    '  if [ $((i % 40)) -eq 20 ]; then for h in /sys/class/scsi_host/host*/scan; do echo "- - -" > "$h" 2>/dev/null || true; done; fi',
    '  i=$((i+1)); sleep 0.05',
    'done',
    `[ -n "$dev" ] && [ -b "$dev" ] || { echo "the volume's disk (scsi target ${slot}) did not appear" >&2; exit 3; }`,
    `mkdir -p ${q(path)}`,
    `mount -t ext4 -o ${opts} "$dev" ${q(path)}`,
  ].join('\n');
}

export function unmountScript(paths: string[]): string {
  return ['sync', ...paths.map((p) => `umount ${q(p)} 2>/dev/null || umount -l ${q(p)} 2>/dev/null || true`)].join('\n');
}

async function run(agent: GuestAgent, script: string, timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  const err: Buffer[] = [];
  const h = agent.exec({ argv: ['/bin/sh', '-c', script], timeoutMs }, { onStderr: (b) => void err.push(b) });
  const r = await h.result;
  return { code: r.exitCode, stderr: Buffer.concat(err).toString('utf8').slice(-2000) };
}

export async function mountInGuest(agent: GuestAgent, slot: number, path: string, readOnly: boolean): Promise<void> {
  const r = await run(agent, mountScript(slot, path, readOnly), 60_000);
  if (r.code !== 0) throw new KilnError('VOLUME_ATTACH_FAILED', `mounting the volume at ${path} failed in the guest (exit ${r.code}): ${r.stderr.trim()}`, { status: 500 });
}

export async function unmountInGuest(agent: GuestAgent, paths: string[]): Promise<void> {
  await run(agent, unmountScript(paths), 10_000);
}
