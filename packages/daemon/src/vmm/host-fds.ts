/**
 * Host devices reach QEMU as inherited file descriptors, opened by the privileged part of the
 * launch chain (root, before setpriv drops to the VMM user), so QEMU needs neither the right
 * to open them nor the device nodes in its jail:
 *   the TAP  — /dev/net/tun + TUNSETIFF (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, what QEMU itself
 *              asks for) on the sandbox's persistent TAP, inside the sandbox's network
 *              namespace (a tun file attaches to the device of the namespace it was opened
 *              in) → fd 3, `-netdev tap,id=net0,fd=3`;
 *   /dev/kvm — (KVM only) → fd 4, `-add-fd fd=4,set=1 -accel kvm,device=/dev/fdset/1`
 *              (QEMU ≥ 9.2 opens the accelerator's `device` through qemu_open, which takes an
 *              fd set; the jailed QEMU dups fd 4 and never opens /dev/kvm).
 * The fd numbers are constants, so the QEMU command line (and the layout fingerprint of the
 * template key) never depends on them.
 *
 * Why perl: Node cannot ioctl, and perl (perl-base is Essential on Debian) can open, ioctl,
 * dup2 and exec in a few lines without a compiled helper. The script is a constant; the TAP
 * name and the device path reach it only as arguments.
 */
import type { Accel } from './accel.js';
import type { VmSpec } from './driver.js';

/** fd of the sandbox's TAP queue in QEMU. */
export const TAP_FD = 3;
/** fd of /dev/kvm in QEMU, and the fd set that carries it. */
export const KVM_FD = 4;
export const KVM_FDSET = 1;
export const KVM_DEVICE = '/dev/kvm';

/** What the launch chain opens for one VM. */
export interface HostDevices {
  /** Name of the persistent TAP in the current network namespace, or null (no NIC backend). */
  tap: string | null;
  /** Path of the KVM device (/dev/kvm), or null under TCG. */
  kvm: string | null;
}

/**
 * Args: TAP (or ''), KVM path (or ''), command…. Opens each device, places it on its fixed fd
 * (dup2 from wherever open put it; the original closes), without close-on-exec, and execs the
 * command. Every other fd perl opens stays close-on-exec ($^F = 2, perl's default).
 */
const OPEN_HOST_FDS = `use strict; use warnings; use POSIX (); use Fcntl qw(O_RDWR F_SETFD);
my ($tap, $kvm) = splice(@ARGV, 0, 2);
my @keep;
sub place {
  my ($path, $fd, $ifname) = @_;
  sysopen(my $h, $path, O_RDWR) or die "kiln-host-fds: open $path: $!\\n";
  if (defined $ifname) {
    # TUNSETIFF, struct ifreq { char name[16]; short flags; pad to 40 }: IFF_TAP|IFF_NO_PI|IFF_VNET_HDR
    ioctl($h, 0x400454ca, pack('Z16 s x22', $ifname, 0x5002)) or die "kiln-host-fds: TUNSETIFF $ifname: $!\\n";
  }
  if (fileno($h) != $fd) {
    defined POSIX::dup2(fileno($h), $fd) or die "kiln-host-fds: dup2 $path to $fd: $!\\n";
    close($h);
  } else {
    fcntl($h, F_SETFD, 0) or die "kiln-host-fds: fcntl $fd: $!\\n";
    push @keep, $h;
  }
}
place('/dev/net/tun', ${TAP_FD}, $tap) if $tap ne '';
place($kvm, ${KVM_FD}) if $kvm ne '';
exec { $ARGV[0] } @ARGV or die "kiln-host-fds: exec $ARGV[0]: $!\\n";
`;

/** The command prefix that opens `devices` and execs the rest; empty when there is nothing to open. */
export function hostFdsCommand(devices: HostDevices): string[] {
  if (devices.tap === null && devices.kvm === null) return [];
  return ['perl', '-e', OPEN_HOST_FDS, '--', devices.tap ?? '', devices.kvm ?? ''];
}

/** The devices one VM needs: its TAP when it has a network, /dev/kvm under KVM. */
export function hostDevicesFor(spec: VmSpec, accel: Accel): HostDevices {
  return { tap: spec.net?.tap ?? null, kvm: accel === 'kvm' ? KVM_DEVICE : null };
}

/** QEMU's NIC backend: the inherited TAP queue (vnet header detected by QEMU from the fd). */
export const tapNetdevArgs = (): string[] => ['-netdev', `tap,id=net0,fd=${TAP_FD}`];

/** QEMU's KVM accelerator on the inherited /dev/kvm. */
export const kvmAccelArgs = (): string[] => ['-add-fd', `fd=${KVM_FD},set=${KVM_FDSET},opaque=kvm`, '-accel', `kvm,device=/dev/fdset/${KVM_FDSET}`];
