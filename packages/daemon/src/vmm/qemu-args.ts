/**
 * The QEMU command line of one VM (microvm, its device set, sockets, seccomp filter) and the
 * layout fingerprint that every template key carries (vmm/qemu.ts runs it).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { KilnError } from '../errors.js';
import { VMM_DIR } from '../sandbox/run-dir.js';
import type { AccelChoice } from './accel.js';
import type { VmSpec } from './driver.js';
import { vmPaths } from './driver.js';
import { kvmAccelArgs, tapNetdevArgs } from './host-fds.js';

/** QEMU's seccomp filter: no obsolete syscalls, no setuid/caps, no fork/exec, no affinity/priority. */
export const QEMU_SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

/** The id of the SCSI controller volumes are hot-plugged on (its bus is `${id}.0`). */
export const VOLUME_SCSI_ID = 'vols';

export const vmMarker = (id: string): string => `kiln-${id}`;
/** MAC of a NIC without a backend (templates); each sandbox's guest gets its own at run time. */
const NO_PEER_MAC = '02:6b:00:00:00:00';

export function buildQemuArgs(spec: VmSpec, accel: AccelChoice['accel'], opts: { tcgTbSizeMiB: number; tscKhz: number | null }): string[] {
  const p = vmPaths(spec.runDir);
  const kernelArgs = [spec.cmdline, 'console=ttyS0', 'edd=off', `kiln.hostname=${spec.hostname ?? spec.id}`];
  if (accel === 'tcg' && opts.tscKhz !== null) {
    // Without a calibrated TSC the guest may hang calibrating against the PIT under TCG.
    kernelArgs.push(`tsc_early_khz=${opts.tscKhz}`, 'tsc=reliable', `lpj=${Math.round((opts.tscKhz * 1000) / 250)}`);
  }
  if (spec.memory?.mode === 'template') {
    // The guest leaves free page reporting off (guest-init): its clones map this RAM file
    // read-only, and QEMU 10 refuses to discard RAM of a read-only file ("Discarding RAM with
    // readonly files is not supported", one log line per report); a clone inherits the off.
    kernelArgs.push('kiln.page_reporting=off');
  }
  const accelArgs =
    accel === 'kvm'
      ? [...kvmAccelArgs(), '-cpu', 'host']
      : // +arat (APIC timer always running): without it the guest's LAPIC timer may stop in deep
        // idle, microvm has no HPET/PIT to broadcast from, so the kernel never goes tickless and
        // every vCPU takes 250 timer interrupts a second (docs/fast-start.md, idle CPU).
        ['-accel', `tcg,tb-size=${opts.tcgTbSizeMiB}`, '-cpu', 'qemu64,+arat'];
  // Guest RAM is always a named backend ("mem"), so every VM of a shape has the same RAM
  // block layout and any snapshot can be restored into any of them.
  const mem = spec.memory;
  const memObject =
    mem === undefined
      ? `memory-backend-ram,id=mem,size=${spec.memoryMiB}M`
      : mem.mode === 'template'
        ? `memory-backend-file,id=mem,size=${spec.memoryMiB}M,mem-path=${mem.file},share=on`
        : `memory-backend-file,id=mem,size=${spec.memoryMiB}M,mem-path=${mem.file},share=off,readonly=on,rom=off`;
  return [
    '-name', `${vmMarker(spec.id)},process=${vmMarker(spec.id)}`,
    // qboot loads -kernel directly; Debian's default microvm firmware (SeaBIOS) needs option
    // ROMs for that and, with x-option-roms=off, hangs at "No bootable device".
    '-M', 'microvm,x-option-roms=off,rtc=on,memory-backend=mem',
    '-bios', 'qboot.rom',
    '-object', memObject,
    ...accelArgs,
    '-m', `${spec.memoryMiB}`,
    '-smp', `${spec.vcpus}`,
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-sandbox', QEMU_SANDBOX,
    '-kernel', spec.kernel,
    '-initrd', spec.initrd,
    '-append', kernelArgs.join(' ').trim(),
    '-drive', `id=root,file=${spec.rootfs},format=raw,if=none,readonly=on`,
    '-device', 'virtio-blk-device,drive=root,serial=kiln-root',
    '-drive', `id=scratch,file=${spec.scratch},format=${spec.scratchFormat ?? 'raw'},if=none,discard=unmap`,
    '-device', 'virtio-blk-device,drive=scratch,serial=kiln-scratch',
    ...(spec.net ? tapNetdevArgs() : []),
    '-device', `virtio-net-device,id=nic0,mac=${spec.net?.mac ?? NO_PEER_MAC}${spec.net ? ',netdev=net0' : ''}`,
    // Free page reporting: the guest hands RAM it freed back (2 MiB+ blocks, ~2 s after the
    // free) and QEMU drops it (madvise DONTNEED), so the VMM's RSS falls after a guest load.
    // Works where guest RAM is anonymous (cold boots, forks restored from a state file);
    // template guests leave it off (see above).
    '-device', 'virtio-balloon-device,free-page-reporting=on',
    '-device', 'virtio-serial-device',
    '-chardev', `socket,id=agent,path=${p.agentSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=agent,name=org.kiln.agent',
    '-chardev', `socket,id=ctl,path=${p.guestctlSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=ctl,name=org.kiln.guestctl',
    // Guest output reaches the host only through kilnd (never a QEMU-written file, which a
    // guest could grow without bound): console and service logs are socket servers that kilnd
    // reads; while nobody is connected QEMU discards console output and the guest's log
    // forwarder waits. Every VM of an image has this same device set (snapshots rely on it).
    '-chardev', `socket,id=logs,path=${p.logsSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=logs,name=org.kiln.logs',
    '-chardev', `socket,id=con,path=${p.consoleSocket},server=on,wait=off`,
    '-serial', 'chardev:con',
    // Volumes (volume/hotplug.ts): a SCSI controller with no disks. microvm's virtio-mmio bus
    // takes no hot-plug, a SCSI bus does: a restored VM (whose device set is its template's)
    // gets each volume as a scsi-hd added over QMP after the restore.
    '-device', `virtio-scsi-device,id=${VOLUME_SCSI_ID}`,
    '-qmp', `unix:${p.qmpSocket},server=on,wait=off`,
    ...(spec.incoming ? ['-incoming', 'defer'] : []),
  ];
}

/** Hash of the QEMU command line for a canonical VM: changes whenever the device set does. */
export function layoutFingerprint(accel: AccelChoice['accel'], tbSize: number): string {
  const canonical: VmSpec = {
    id: 'sb-000000000000',
    runDir: '/run-dir',
    memoryMiB: 1024,
    vcpus: 2,
    kernel: '/k',
    initrd: '/i',
    rootfs: '/r',
    scratch: '/s',
    cmdline: '',
  };
  // Where the sockets live is no part of the device set: a template made before they moved
  // into the VMM's directory restores as before.
  const args = buildQemuArgs(canonical, accel, { tcgTbSizeMiB: tbSize, tscKhz: 1 }).map((a) => a.replaceAll(`/run-dir/${VMM_DIR}/`, '/run-dir/'));
  return createHash('sha256').update(args.join('\0')).digest('hex').slice(0, 8);
}

/** The QEMU binary's version (part of the driver version, so of every template key). */
export function qemuVersion(binary: string): string {
  try {
    const out = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    return /version\s+([^\s]+)/.exec(out)?.[1] ?? 'unknown';
  } catch (err) {
    throw new KilnError('VMM_NOT_FOUND', `cannot run ${binary} --version (install qemu-system-x86 from bookworm-backports: scripts/setup.sh): ${(err as Error).message}`, { status: 503 });
  }
}
