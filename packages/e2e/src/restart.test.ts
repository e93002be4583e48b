/** kilnd dies (SIGKILL) while a sandbox runs; a new kilnd adopts the same, still usable sandbox. */
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();

describe('daemon crash and restart', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('restart');
  after(async () => fx.close());

  fx.test('SIGKILL of kilnd keeps the VM; the restarted daemon gives back the same sandbox', async () => {
    await fx.start();
    const sb = await fx.client.create({ memoryMiB: 768 });
    assert.equal(sb.state, 'running');
    await fx.sh(sb.id, 'echo before-crash > /root/marker');
    const pidsBefore = fx.vmmProcesses();
    assert.equal(pidsBefore.length, 1);

    await fx.crash();
    assert.deepEqual(fx.vmmProcesses(), pidsBefore, 'the VM outlives the daemon');

    await fx.start();
    const again = await fx.client.get(sb.id);
    assert.equal(again.state, 'running');
    assert.equal(again.vm?.pid, pidsBefore[0]);
    assert.equal((await fx.sh(sb.id, 'cat /root/marker')).out, 'before-crash\n');
    const events = await fx.client.events(sb.id);
    assert.ok(events.some((e) => e.type === 'adopted'));

    await fx.client.destroy(sb.id);
    assert.equal(fx.vmmProcesses().length, 0);
  });
});
