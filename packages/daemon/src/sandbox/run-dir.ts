/**
 * The layout of a sandbox's run directory, `<stateDir>/sandboxes/<id>`: every file kilnd, the
 * VMM or the sandbox's resolver keeps there is named here and nowhere else. A template build
 * uses the same layout in its temporary directory (template/builder.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The directory holding every sandbox's run directory. */
export function sandboxesDir(stateDir: string): string {
  return join(stateDir, 'sandboxes');
}

/** The run directory of sandbox `id` under `sandboxesRoot` (see sandboxesDir). */
export function runDirOf(sandboxesRoot: string, id: string): string {
  return join(sandboxesRoot, id);
}

export interface RunDirLayout {
  dir: string;
  /** The scratch disk of a cold-booted VM (raw). */
  scratchRaw: string;
  /** The scratch disk of a restored VM (qcow2 overlay over its template's disk). */
  scratchQcow2: string;
  /** The serial console as a file (older layout; the console is now read from consoleSocket). */
  consoleLog: string;
  qmpSocket: string;
  agentSocket: string;
  guestctlSocket: string;
  consoleSocket: string;
  logsSocket: string;
  /** QEMU's stdout/stderr (and the launcher's). */
  vmmLog: string;
  /** The jail's mountpoint (vmm/launcher.ts). */
  jailRoot: string;
  /** Where a jailed QEMU writes a snapshot's device state before kilnd moves it. */
  snapshotState: string;
  /** The sandbox's dnsmasq (network/resolver.ts). */
  resolver: { conf: string; pid: string; log: string; oldLog: string };
}

export function runDirLayout(dir: string): RunDirLayout {
  return {
    dir,
    scratchRaw: join(dir, 'scratch.img'),
    scratchQcow2: join(dir, 'scratch.qcow2'),
    consoleLog: join(dir, 'console.log'),
    qmpSocket: `${dir}/qmp.sock`,
    agentSocket: `${dir}/agent.sock`,
    guestctlSocket: `${dir}/guestctl.sock`,
    consoleSocket: `${dir}/console.sock`,
    logsSocket: `${dir}/logs.sock`,
    vmmLog: `${dir}/vmm.log`,
    jailRoot: `${dir}/jail`,
    snapshotState: join(dir, 'snapshot.state'),
    resolver: {
      conf: join(dir, 'dnsmasq.conf'),
      pid: join(dir, 'dnsmasq.pid'),
      log: join(dir, 'dns.log'),
      oldLog: join(dir, 'dns.log.1'),
    },
  };
}

/** What a stopped VM leaves in its run directory that a kept directory (a template) must not. */
export function vmLeftovers(l: RunDirLayout): string[] {
  return [l.agentSocket, l.qmpSocket, l.logsSocket, l.consoleSocket, l.jailRoot];
}

/** Where a sandbox's scratch disk is and in which format (raw for cold boots, qcow2 for clones). */
export function scratchOf(l: RunDirLayout): { path: string; format: 'raw' | 'qcow2' } {
  return existsSync(l.scratchQcow2) ? { path: l.scratchQcow2, format: 'qcow2' } : { path: l.scratchRaw, format: 'raw' };
}
