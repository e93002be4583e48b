/**
 * A VM that ends by itself (killed, panicked, powered off) or a guest that stops answering:
 * the sandbox is marked failed with the reason and everything it held is reclaimed.
 */
import type { SandboxRuntime } from '../sandbox/runtime.js';
import type { SandboxError } from '../sandbox/types.js';
import type { VmExit, VmHandle } from '../vmm/driver.js';
import { classifyVmExit } from './exit-reason.js';

/** Watches a VM's process from now on, so its death is noticed (also during creation). */
export function watchVm(rt: SandboxRuntime, id: string, vm: VmHandle): void {
  rt.o.observer?.vmWatched?.(id, vm);
  void rt.driver.wait(vm).then(async (exit) => {
    // A VM that ended itself (panic, poweroff): a moment lets the console collector read its last words.
    if (exit.signal === null) await new Promise((r) => setTimeout(r, 300));
    if (!rt.closed) onVmExit(rt, id, vm, exit);
  });
}

function onVmExit(rt: SandboxRuntime, id: string, vm: VmHandle, exit: VmExit): void {
  const rec = rt.store.get(id);
  const live = rt.live.get(id);
  if (!rec || rec.vm?.pid !== vm.pid || rec.vm.startTime !== vm.startTime) return; // replaced or gone
  if (live?.destroying || rec.state === 'stopping' || rec.state === 'destroyed') return;
  rt.store.addEvent(id, 'vm-exited', { ...exit });
  if (rec.state === 'creating') {
    live?.abort.abort();
    return;
  }
  if (rec.state !== 'running' && rec.state !== 'paused') return;
  rec.error = classifyVmExit(exit, rt.consoleTail(id, 8192));
  rec.vm = null;
  rt.setState(rec, 'failed');
  void rt.releaseResources(id);
}

/** The agent's channel closed: the sandbox has no agent until it is adopted again. */
export function onAgentClosed(rt: SandboxRuntime, id: string): void {
  const live = rt.live.get(id);
  if (live) live.agent = null;
  if (rt.store.get(id)?.state === 'running') rt.log(id).warn('agent channel closed');
}

/** Fails a live sandbox for `error` (e.g. an unresponsive guest): kills its VM and reclaims everything. */
export async function failSandbox(rt: SandboxRuntime, id: string, error: SandboxError): Promise<void> {
  const rec = rt.store.get(id);
  const live = rt.live.get(id);
  if (!rec || (rec.state !== 'running' && rec.state !== 'paused') || live?.destroying || live?.creating) return;
  const vm = rec.vm;
  rec.error = error;
  rec.vm = null;
  rt.setState(rec, 'failed');
  if (live) {
    live.agent?.close();
    live.agent = null;
  }
  if (vm) await rt.driver.kill(vm).catch((err: unknown) => rt.log(id).error({ err }, 'kill failed'));
  await rt.releaseResources(id);
}
