/**
 * Hot-plugging a disk (a volume) into a running VM. microvm's virtio-mmio bus takes no
 * hot-plug, so every VM has an empty SCSI controller (qemu-args.ts, VOLUME_SCSI_ID) and a disk
 * joins it as a scsi-hd over QMP: `blockdev-add` opens the file, `device_add` plugs it at SCSI
 * target `slot` (the guest finds it as host:0:slot:0). A restored VM's device set is its
 * template's; this adds to it after the restore.
 *
 * The jailed QEMU sees only the files bound into its jail at start (vmm/jail.ts); of those only
 * its own directory (`vmm/`) is a directory. Root links the disk's file there (a hard link: the
 * same inode, no copy), hands the file to the VMM user while it is attached, and QEMU opens the
 * link. QEMU's own image locks then back kilnd's rule (one writer, or readers only).
 */
import { linkSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KilnError } from '../errors.js';
import type { HotDisk, VmHandle } from './driver.js';
import type { VmmIdentity } from './jail.js';
import { QmpClient } from './qmp.js';
import { VOLUME_SCSI_ID } from './qemu-args.js';
import { giveFileToVmm } from './vmm-dir.js';

export type { HotDisk };

export const MAX_HOT_DISKS = 8;

/** Where a hot-plugged disk's link lives in the VMM's directory. */
export const hotDiskLink = (vm: VmHandle, slot: number): string => join(dirname(vm.paths.qmpSocket), `vol${slot}.img`);

export async function hotplugDisk(vm: VmHandle, disk: HotDisk, identity: VmmIdentity | null): Promise<void> {
  if (!Number.isInteger(disk.slot) || disk.slot < 0 || disk.slot >= MAX_HOT_DISKS) throw new KilnError('INVALID_ARGUMENT', `disk slot ${disk.slot} out of range`);
  const link = hotDiskLink(vm, disk.slot);
  rmSync(link, { force: true });
  try {
    linkSync(disk.file, link);
  } catch (err) {
    throw new KilnError('VOLUME_ATTACH_FAILED', `cannot link ${disk.file} into the VMM's directory (volumes and sandboxes must be on one filesystem): ${(err as Error).message}`, { status: 500, cause: err });
  }
  if (identity) giveFileToVmm(link, identity);
  const node = `vol${disk.slot}`;
  const q = await QmpClient.connect(vm.paths.qmpSocket, 5000);
  try {
    await q.execute('blockdev-add', {
      driver: 'raw',
      'node-name': node,
      'read-only': disk.readOnly,
      file: { driver: 'file', filename: link, 'read-only': disk.readOnly },
    });
    await q.execute('device_add', {
      driver: 'scsi-hd',
      id: node,
      bus: `${VOLUME_SCSI_ID}.0`,
      drive: node,
      'scsi-id': disk.slot,
      lun: 0,
      serial: disk.serial,
    });
  } catch (err) {
    throw new KilnError('VOLUME_ATTACH_FAILED', `QEMU refused the volume's disk: ${(err as Error).message}`, { status: 500, cause: err });
  } finally {
    q.close();
  }
}
