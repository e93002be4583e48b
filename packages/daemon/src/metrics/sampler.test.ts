import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResourceSampler } from './sampler.js';
import type { GuestAgent } from '../sandbox/guest-agent.js';
import type { SandboxRecord } from '../sandbox/types.js';

/** One running sandbox whose VMM uses `cpu` % of a core per 2 s round (the test sets it), and a counting agent. */
function rig(o: { idleGuestIntervalMs?: number } = {}) {
  let clock = 1_000_000;
  let cpuSeconds = 0;
  const state = { cpu: 0, healthCalls: 0, memAvailableKiB: 900 };
  const agent = {
    health: async () => {
      state.healthCalls++;
      return { uptimeMs: 1, loadavg: [0, 0, 0] as [number, number, number], memTotalKiB: 1000, memAvailableKiB: state.memAvailableKiB, dockerReady: true };
    },
  } as unknown as GuestAgent;
  const rec = { id: 'sb-000000000001', state: 'running', vm: { pid: 4242 } } as unknown as SandboxRecord;
  const sampler = new ResourceSampler(
    { list: () => [rec], agent: () => agent, scratchPath: () => null },
    { intervalMs: 2000, idleGuestIntervalMs: o.idleGuestIntervalMs ?? 30_000, now: () => clock, readUsage: () => ({ cpuSeconds, rssBytes: 1 }) },
  );
  /** Advances 2 s, during which the VMM used `state.cpu` % of a core, and samples. */
  const round = async (opts: { fresh?: boolean } = {}) => {
    clock += 2000;
    cpuSeconds += (state.cpu / 100) * 2;
    await sampler.sampleAll(opts);
    return sampler.get(rec.id);
  };
  return { state, round, sampler };
}

test('sampler: an idle guest is asked every idleGuestIntervalMs, not every round', async () => {
  const { state, round } = rig({ idleGuestIntervalMs: 10_000 });
  state.cpu = 2;
  await round(); // no CPU % yet: asked
  await round(); // no previous CPU %: asked
  assert.equal(state.healthCalls, 2);
  for (let i = 0; i < 4; i++) await round(); // 8 s idle: not asked
  assert.equal(state.healthCalls, 2);
  const s = await round(); // 10 s after the last answer
  assert.equal(state.healthCalls, 3);
  assert.ok(Math.abs((s?.vmm?.cpuPercent ?? 0) - 2) < 1e-9);
  assert.equal(s?.guest?.memUsedBytes, 100 * 1024);
});

test('sampler: a busy guest is asked every round, and once more in the first idle round after', async () => {
  const { state, round } = rig();
  state.cpu = 2;
  await round();
  await round();
  const before = state.healthCalls;
  state.cpu = 80;
  state.memAvailableKiB = 500;
  await round();
  await round();
  assert.equal(state.healthCalls, before + 2, 'asked while busy');
  state.cpu = 1;
  state.memAvailableKiB = 900; // the load ended during this round
  const s = await round();
  assert.equal(state.healthCalls, before + 3, 'asked in the first idle round');
  assert.equal(s?.guest?.memUsedBytes, 100 * 1024, 'the idle guest memory is seen');
  await round();
  assert.equal(state.healthCalls, before + 3, 'then left alone');
});

test('sampler: the VMM figures are fresh every round; the guest answer keeps its own time', async () => {
  const { state, round } = rig();
  state.cpu = 3;
  await round();
  const asked = await round();
  const later = await round();
  assert.equal(later?.guest?.at, asked?.guest?.at, 'guest not asked again');
  assert.ok((later?.at ?? 0) > (asked?.at ?? 0));
  assert.ok(Math.abs((later?.vmm?.cpuPercent ?? 0) - 3) < 1e-9);
});

test('sampler: a fresh sample asks an idle guest', async () => {
  const { state, round } = rig();
  state.cpu = 1;
  await round();
  await round();
  const before = state.healthCalls;
  await round();
  assert.equal(state.healthCalls, before);
  await round({ fresh: true });
  assert.equal(state.healthCalls, before + 1);
});

test('sampler: network bytes come from the network source, read now on a fresh sample', async () => {
  const rec = { id: 'sb-000000000001', state: 'running', vm: { pid: 4242 } } as unknown as SandboxRecord;
  const asked: boolean[] = [];
  const sampler = new ResourceSampler(
    { list: () => [rec], agent: () => null, scratchPath: () => null, network: async (_id, fresh) => (asked.push(fresh), { rxBytes: 300, txBytes: 40 }) },
    { readUsage: () => ({ cpuSeconds: 0, rssBytes: 1 }) },
  );
  await sampler.sampleAll();
  await sampler.sampleAll({ fresh: true });
  assert.deepEqual(asked, [false, true]);
  assert.deepEqual(sampler.get(rec.id)?.net, { rxBytes: 300, txBytes: 40 });
});
