/**
 * Orphan GC: what this kilnd once made under its state directory but no sandbox row owns any
 * more (a kilnd killed mid-create, a row removed by hand): VMM processes, network resources,
 * run directories. Another kilnd's (another state directory's) things are never touched.
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import type { SandboxRuntime } from '../sandbox/runtime.js';
import { hostKey } from '../sandbox/ids.js';

/** Removes every orphan; a line per thing removed. */
export async function removeOrphans(rt: SandboxRuntime): Promise<string[]> {
  const removed: string[] = [];
  const known = new Set(rt.store.list().map((r) => r.id));
  // Decide on the row as it is now: a create in progress inserted its row before its VMM.
  const owned = (id: string) => known.has(id) || rt.store.get(id) !== null;
  for (const vmm of rt.driver.findVmms(rt.sandboxesDir)) {
    if (owned(vmm.id)) continue;
    rt.o.logger.warn({ pid: vmm.pid, sandboxId: vmm.id }, 'killing orphaned VMM');
    if (vmm.kill()) removed.push(`vmm ${vmm.id} pid ${vmm.pid}`);
  }
  if (rt.network) {
    for (const hex of await rt.network.listNetworkOrphans(known)) {
      if (rt.store.list().some((r) => hostKey(r.id) === hex)) continue;
      await rt.network.cleanupNetwork(hex);
      removed.push(`network sb-${hex}`);
    }
  }
  if (!existsSync(rt.sandboxesDir)) return removed;
  for (const name of await readdir(rt.sandboxesDir)) {
    // A row inserted after `known` was read (a create in progress) is not an orphan.
    if (owned(name)) continue;
    rt.o.logger.warn({ sandboxId: name }, 'removing orphaned sandbox directory');
    await rm(rt.runDir(name).dir, { recursive: true, force: true });
    removed.push(`run-dir ${name}`);
  }
  return removed;
}
