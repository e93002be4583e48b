/** kilnd start-up hook of the jailed VMM: orphaned cgroups. */
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { removeOrphanCgroups } from './cgroup.js';
import type { VmmDriver } from './driver.js';
import { QemuDriver } from './qemu.js';

/** Removes empty `kiln/<id>` cgroups that no sandbox of this store owns (busy ones are left). */
export function removeVmmOrphans(driver: VmmDriver, store: Store, logger: Logger): void {
  if (!(driver instanceof QemuDriver) || !driver.jail) return;
  const known = new Set(store.list().map((r) => r.id));
  const removed = removeOrphanCgroups(driver.jail.cgroups, (id) => known.has(id));
  if (removed.length > 0) logger.info({ removed }, 'removed orphaned VM cgroups');
}
