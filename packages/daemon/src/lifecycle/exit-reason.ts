/**
 * Why a VM ended, read from how its process ended and the last lines of its console. The guest
 * kernel runs with `panic=-1` and QEMU with `-no-reboot`, so a kernel panic, a guest reboot and
 * a guest poweroff all end the QEMU process: the console tells them apart.
 */
import type { VmExit } from '../vmm/driver.js';
import type { SandboxError } from '../sandbox/types.js';

export function classifyVmExit(exit: VmExit, consoleTail: string): SandboxError {
  const tail = consoleTail.trim().split('\n').slice(-3).join(' | ');
  const withTail = (m: string): string => (tail ? `${m}; console: ${tail}` : m);
  // An oops dump is long: the panic line may be kilobytes back, the "Kernel Offset" line ends the dump.
  if (/Kernel panic|sysrq: Trigger a crash|Oops:|Kernel Offset: 0x/i.test(consoleTail)) {
    const line = /[^\n]*(Kernel panic|sysrq: Trigger a crash|Oops:)[^\n]*/.exec(consoleTail)?.[0]?.trim();
    return { code: 'GUEST_PANIC', message: `the guest kernel panicked${line ? `: ${line}` : ''}` };
  }
  if (exit.signal) return { code: 'VM_EXITED', message: withTail(`the VM was killed by ${exit.signal}`) };
  if (/reboot: Power down|Power down/.test(consoleTail)) return { code: 'GUEST_POWEROFF', message: withTail('the guest powered itself off') };
  if (/reboot: Restarting system/.test(consoleTail)) return { code: 'GUEST_REBOOT', message: withTail('the guest rebooted (QEMU runs with -no-reboot, so a reboot ends the VM)') };
  const how = exit.exitCode !== null ? `exited with code ${exit.exitCode}` : 'vanished';
  return { code: 'VM_EXITED', message: withTail(`the VM ${how} unexpectedly`) };
}
