/**
 * Host devices reach QEMU as inherited file descriptors, opened by the launcher
 * (native/kiln-vmm-launch.c) as root before it drops to the VMM user, so QEMU needs neither
 * the right to open them nor the device nodes in its jail:
 *   the TAP  — /dev/net/tun + TUNSETIFF (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, what QEMU itself
 *              asks for) on the sandbox's persistent TAP, inside the sandbox's network
 *              namespace (a tun file attaches to the device of the namespace it was opened
 *              in) → fd 3, `-netdev tap,id=net0,fd=3`;
 *   /dev/kvm — (KVM only) → fd 4, `-add-fd fd=4,set=1 -accel kvm,device=/dev/fdset/1`
 *              (QEMU ≥ 9.2 opens the accelerator's `device` through qemu_open, which takes an
 *              fd set; the jailed QEMU dups fd 4 and never opens /dev/kvm).
 * The fd numbers are constants (the launcher's TAP_FD and KVM_FD), so the QEMU command line
 * (and the layout fingerprint of the template key) never depends on them.
 */
import type { Accel } from './accel.js';
import type { VmSpec } from './driver.js';

/** fd of the sandbox's TAP queue in QEMU. */
export const TAP_FD = 3;
/** fd of /dev/kvm in QEMU, and the fd set that carries it. */
export const KVM_FD = 4;
export const KVM_FDSET = 1;
export const KVM_DEVICE = '/dev/kvm';

/** What the launcher opens for one VM. */
export interface HostDevices {
  /** Name of the persistent TAP in the current network namespace, or null (no NIC backend). */
  tap: string | null;
  /** Path of the KVM device (/dev/kvm), or null under TCG. */
  kvm: string | null;
}

/** The launcher's options that open `devices` (none when there is nothing to open). */
export function hostFdsOptions(devices: HostDevices): string[] {
  return [...(devices.tap === null ? [] : ['--tap', devices.tap]), ...(devices.kvm === null ? [] : ['--kvm', devices.kvm])];
}

/** The devices one VM needs: its TAP when it has a network, /dev/kvm under KVM. */
export function hostDevicesFor(spec: VmSpec, accel: Accel): HostDevices {
  return { tap: spec.net?.tap ?? null, kvm: accel === 'kvm' ? KVM_DEVICE : null };
}

/** QEMU's NIC backend: the inherited TAP queue (vnet header detected by QEMU from the fd). */
export const tapNetdevArgs = (): string[] => ['-netdev', `tap,id=net0,fd=${TAP_FD}`];

/** QEMU's KVM accelerator on the inherited /dev/kvm. */
export const kvmAccelArgs = (): string[] => ['-add-fd', `fd=${KVM_FD},set=${KVM_FDSET},opaque=kvm`, '-accel', `kvm,device=/dev/fdset/${KVM_FDSET}`];
