// The balancer's decisions over scripted CPU readings (the cgroup writes are vmm/cgroup.ts's,
// tested there; a real spinning guest is the hardening e2e's part).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuBalancer } from './cpu-balancer.js';
import type { VmHandle } from '../vmm/driver.js';

const vm = (id: string, pid: number): VmHandle => ({ id, pid, startTime: pid * 10, accel: 'tcg', paths: {} as VmHandle['paths'] });

function harness(vms: VmHandle[]) {
  const cpu = new Map<number, number>(vms.map((v) => [v.pid, 0]));
  const weights = new Map<string, boolean>();
  const events: string[] = [];
  let list = vms;
  const b = new CpuBalancer(
    {
      vms: () => list.map((v) => ({ id: v.id, vm: v })),
      cpuSeconds: (v) => cpu.get(v.pid) ?? null,
      setDemoted: (v, d) => weights.set(v.id, d),
      changed: (id, d, cores) => events.push(`${id} ${d ? 'demoted' : 'restored'} ${cores}`),
    },
    { intervalMs: 1000 },
  );
  let now = 0;
  /** One second passes in which each VM used `cores`. */
  const second = (use: Record<number, number>) => {
    now += 1000;
    for (const [pid, c] of Object.entries(use)) cpu.set(Number(pid), (cpu.get(Number(pid)) ?? 0) + c);
    b.tick(now);
  };
  b.tick(now);
  return { b, cpu, weights, events, second, setList: (l: VmHandle[]) => (list = l) };
}

test('a VM busy for three samples gets the low weight; quiet for three, the default again', () => {
  const a = vm('sb-a', 1);
  const n = vm('sb-n', 2);
  const h = harness([a, n]);
  h.second({ 1: 1.9, 2: 0.9 });
  h.second({ 1: 1.9, 2: 0.9 });
  assert.deepEqual(h.events, [], 'two busy samples are not enough (a burst of commands)');
  h.second({ 1: 1.9, 2: 0.03 });
  assert.deepEqual(h.events, ['sb-a demoted 1.9']);
  assert.equal(h.weights.get('sb-a'), true);
  assert.equal(h.weights.has('sb-n'), false, 'a neighbour with a short burst is never touched');
  h.second({ 1: 1.9 });
  assert.equal(h.events.length, 1, 'no repeated writes while it stays busy');
  h.second({ 1: 0.1 });
  h.second({ 1: 0.4 }); // neither busy nor quiet: the quiet count starts again
  h.second({ 1: 0.1 });
  h.second({ 1: 0.1 });
  assert.equal(h.events.length, 1);
  h.second({ 1: 0.0 });
  assert.deepEqual(h.events, ['sb-a demoted 1.9', 'sb-a restored 0']);
  assert.equal(h.weights.get('sb-a'), false);
});

test('a busy spell broken by one quiet sample does not demote; a new VM for an id starts fresh', () => {
  const a = vm('sb-a', 1);
  const h = harness([a]);
  h.second({ 1: 1.0 });
  h.second({ 1: 1.0 });
  h.second({ 1: 0.0 });
  h.second({ 1: 1.0 });
  h.second({ 1: 1.0 });
  assert.deepEqual(h.events, []);
  h.second({ 1: 1.0 });
  assert.deepEqual(h.events, ['sb-a demoted 1']);
  // The same sandbox id with another VM process (e.g. after a failed VM was replaced): fresh state.
  const a2 = vm('sb-a', 3);
  h.setList([a2]);
  h.cpu.set(3, 50);
  h.second({ 3: 0 });
  h.second({ 3: 0 });
  h.second({ 3: 0 });
  assert.equal(h.events.length, 1, 'no restore is reported for a VM that was never demoted');
});

test('a VM whose cgroup is gone (a write fails) keeps its state and nothing is reported', () => {
  const a = vm('sb-a', 1);
  const events: string[] = [];
  let cpu = 0;
  const b = new CpuBalancer(
    {
      vms: () => [{ id: a.id, vm: a }],
      cpuSeconds: () => cpu,
      setDemoted: () => {
        throw new Error('ENOENT');
      },
      changed: (id) => events.push(id),
    },
    { intervalMs: 1000 },
  );
  for (let t = 0; t <= 5000; t += 1000, cpu += 2) b.tick(t);
  assert.deepEqual(events, []);
});
