/** Finding the QEMU driver's VMM processes without a handle (orphan GC: a VMM whose row is gone). */
import { findProcesses, signalProcess } from '../util/proc.js';
import type { FoundVmm } from './driver.js';
import { vmMarker } from './qemu-args.js';

/** QEMUs (and their launchers) by the run dir and `kiln-<id>` marker on their command lines. */
export function findQemuVmms(runRoot: string): FoundVmm[] {
  const found: FoundVmm[] = [];
  for (const p of findProcesses(`${runRoot}/`)) {
    const id = /kiln-(sb-[0-9a-f]{12}(?:[0-9a-f]{20})?)(?![0-9a-f])/.exec(p.cmdline.join(' '))?.[1];
    if (id) found.push({ id, pid: p.pid, kill: () => signalProcess(p, 'SIGKILL', vmMarker(id)) });
  }
  return found;
}
