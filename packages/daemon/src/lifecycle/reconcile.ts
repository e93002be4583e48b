/**
 * Start-up reconciliation: the store says what should exist, the host says what does. A running
 * or paused sandbox whose VM is alive and whose agent answers is adopted (a paused one stays paused); anything else is cleaned up and
 * marked failed with the reason (warm-pool members and rows mid-destruction are just removed).
 */
import { toKilnError } from '../errors.js';
import type { GuestAgent } from '../sandbox/guest-agent.js';
import type { SandboxRuntime } from '../sandbox/runtime.js';
import type { SandboxRecord } from '../sandbox/types.js';
import type { VmHandle } from '../vmm/driver.js';

export interface ReconcileOps {
  /** Takes a live VM's sandbox back: its agent, its watcher, its expiry. */
  adopt(id: string, vm: VmHandle, agent: GuestAgent): void;
  destroy(id: string): Promise<void>;
}

export async function reconcileOne(rt: SandboxRuntime, ops: ReconcileOps, rec: SandboxRecord): Promise<void> {
  const log = rt.log(rec.id);
  const alive = rec.vm !== null && rt.driver.isAlive(rec.vm);
  if (rec.pool !== null) {
    // A warm-pool member left by a crashed kilnd: nobody owns it; the pool refills itself.
    if (alive && rec.vm) await rt.driver.kill(rec.vm);
    await rt.releaseResources(rec.id);
    rt.store.delete(rec.id);
    rt.forget(rec.id);
    return;
  }
  if ((rec.state === 'running' || rec.state === 'paused') && alive && rec.vm) {
    const paused = rec.state === 'paused';
    try {
      // A paused guest's agent cannot answer: it runs for the adoption check and is paused again.
      if (paused) await rt.driver.resume(rec.vm);
      const agent = await rt.o.connectAgent(rec.vm.paths.agentSocket, { timeoutMs: 15_000 });
      if (paused) await rt.driver.pause(rec.vm);
      ops.adopt(rec.id, rec.vm, agent);
      rt.store.addEvent(rec.id, 'adopted', { pid: rec.vm.pid, ...(paused ? { pausedBy: rec.pausedBy ?? 'user' } : {}) });
      log.info({ state: rec.state }, 'adopted sandbox');
      // An auto-paused sandbox's timeout clock is stopped (sandbox/usage.ts): wake re-arms it.
      if (paused && rec.pausedBy === 'auto') return;
      if (rec.expiresAt !== null && rec.expiresAt <= Date.now()) {
        rt.store.addEvent(rec.id, 'timeout', { expiresAt: rec.expiresAt, whileDaemonDown: true });
        await ops.destroy(rec.id);
      } else {
        rt.expiry.arm(rec.id, rec.expiresAt);
      }
      return;
    } catch (err) {
      log.warn({ err }, 'running VM does not answer; destroying it');
      rec.error = { code: 'ADOPT_FAILED', message: `VM alive but its agent did not answer after kilnd restarted: ${toKilnError(err).message}` };
    }
  }
  if (alive && rec.vm) await rt.driver.kill(rec.vm);
  await rt.releaseResources(rec.id);
  if (rec.state === 'stopping' || rec.state === 'destroyed') {
    rt.store.delete(rec.id);
    rt.forget(rec.id);
    return;
  }
  if (rec.state !== 'failed') {
    rec.error ??=
      rec.state === 'creating'
        ? { code: 'DAEMON_RESTARTED', message: `kilnd stopped during creation (step ${rec.step ?? '?'}); nothing was kept`, ...(rec.step ? { step: rec.step } : {}) }
        : { code: 'VM_EXITED', message: 'the VM ended while kilnd was down' };
    rec.vm = null;
    rt.setState(rec, 'failed');
  }
}
