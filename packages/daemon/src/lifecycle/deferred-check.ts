/**
 * A check that goes on after the create returned (dockerd of a restored clone, which its
 * template verified ready right before the snapshot): its success is an event, its failure
 * fails the sandbox once its creation has finished.
 */
import { toKilnError } from '../errors.js';
import type { SandboxRuntime } from '../sandbox/runtime.js';
import type { VmExit } from '../vmm/driver.js';
import { failSandbox } from './vm-exit.js';

/** How long a failed after-create check waits to see whether the VM itself ended. */
const VM_EXIT_GRACE_MS = 1000;

/** True when `exit` settles within `ms`. */
async function exitsWithin(exit: Promise<VmExit>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([exit.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function verifyAfterCreate(rt: SandboxRuntime, id: string, what: string, check: Promise<unknown>): void {
  const t0 = Date.now();
  check.then(
    () => rt.store.addEvent(id, what, { checkedAfterCreateMs: Date.now() - t0 }),
    async (err: unknown) => {
      const e = toKilnError(err);
      rt.store.addEvent(id, `${what}-failed`, { reason: e.message });
      for (let i = 0; i < 1200 && rt.live.get(id)?.creating; i++) await new Promise((r) => setTimeout(r, 50));
      // A check cut short by the VM itself ending (killed, panicked) is not dockerd's fault: the
      // VM's exit is the reason, and its watcher reports it. The channel closes a moment before
      // the VMM's exit is seen, so give that a moment.
      const vm = rt.store.get(id)?.vm;
      if (vm && (await exitsWithin(rt.driver.wait(vm), VM_EXIT_GRACE_MS))) return;
      await failSandbox(rt, id, { code: 'DOCKER_NOT_READY', message: `${what} check after the restore failed: ${e.message}`, step: what });
    },
  );
}
