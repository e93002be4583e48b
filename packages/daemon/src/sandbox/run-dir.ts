/**
 * The layout of a sandbox's run directory, `<stateDir>/sandboxes/<id>`: every file kilnd, the
 * VMM or the sandbox's resolver keeps there is named here and nowhere else. A template build
 * uses the same layout in its temporary directory (template/builder.ts).
 *
 * The run dir is root's (0700). The jailed QEMU may write in one directory only, `vmm/`
 * (its sockets, created at start-up; kilnd then seals it, vmm/vmm-dir.ts), and in the files
 * root hands it (the scratch disk). Everything root reads or writes (vmm.log, the resolver's
 * files) lives outside `vmm/`, where QEMU can plant nothing (docs/hardening.md, "The VMM
 * boundary on disk").
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
  /** The VMM's directory: the only one bound read-write into its jail. */
  vmmDir: string;
  qmpSocket: string;
  agentSocket: string;
  guestctlSocket: string;
  consoleSocket: string;
  logsSocket: string;
  /** QEMU's stdout/stderr (and the launcher's): root opens it, outside the VMM's directory. */
  vmmLog: string;
  /** The jail's mountpoint (vmm/launcher.ts). */
  jailRoot: string;
  /** The sandbox's dnsmasq (network/resolver.ts). */
  resolver: { conf: string; pid: string; log: string; oldLog: string };
}

export function runDirLayout(dir: string): RunDirLayout {
  const vmm = `${dir}/${VMM_DIR}`;
  return {
    dir,
    scratchRaw: join(dir, 'scratch.img'),
    scratchQcow2: join(dir, 'scratch.qcow2'),
    consoleLog: join(dir, 'console.log'),
    vmmDir: vmm,
    qmpSocket: `${vmm}/qmp.sock`,
    agentSocket: `${vmm}/agent.sock`,
    guestctlSocket: `${vmm}/guestctl.sock`,
    consoleSocket: `${vmm}/console.sock`,
    logsSocket: `${vmm}/logs.sock`,
    vmmLog: `${dir}/vmm.log`,
    jailRoot: `${dir}/jail`,
    resolver: {
      conf: join(dir, 'dnsmasq.conf'),
      pid: join(dir, 'dnsmasq.pid'),
      log: join(dir, 'dns.log'),
      oldLog: join(dir, 'dns.log.1'),
    },
  };
}

/** The name of the VMM's directory in a run dir. */
export const VMM_DIR = 'vmm';

/**
 * The socket kilnd listens on for a snapshot's device state (vmm/migrate-out.ts), in the
 * directory of the VM's sockets (`vmmDir`; a VM adopted from an older layout has them in the
 * run dir itself).
 */
export function migrateSocketIn(vmmDir: string): string {
  return join(vmmDir, 'migrate.sock');
}

/** What a stopped VM leaves in its run directory that a kept directory (a template) must not. */
export function vmLeftovers(l: RunDirLayout): string[] {
  return [l.vmmDir, l.jailRoot];
}

/** Where a sandbox's scratch disk is and in which format (raw for cold boots, qcow2 for clones). */
export function scratchOf(l: RunDirLayout): { path: string; format: 'raw' | 'qcow2' } {
  return existsSync(l.scratchQcow2) ? { path: l.scratchQcow2, format: 'qcow2' } : { path: l.scratchRaw, format: 'raw' };
}
