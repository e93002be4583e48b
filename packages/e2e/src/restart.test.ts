/** kilnd dies (SIGKILL) while a sandbox runs; a new kilnd adopts the same, still usable sandbox. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();

async function execOut(fx: DaemonFixture, id: string, shell: string): Promise<string> {
  let out = '';
  for await (const ev of fx.client.exec(id, { shell })) {
    if (ev.type === 'stdout') out += Buffer.from(ev.data, 'base64').toString();
    if (ev.type === 'error') throw new Error(ev.error.message);
  }
  return out;
}

describe('daemon crash and restart', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('restart');
  let failed = false;
  after(async () => fx.close({ failed }));

  test('SIGKILL of kilnd keeps the VM; the restarted daemon gives back the same sandbox', async () => {
    try {
      await fx.start();
      const sb = await fx.client.create({ memoryMiB: 768 });
      assert.equal(sb.state, 'running');
      await execOut(fx, sb.id, 'echo before-crash > /root/marker');
      const pidsBefore = fx.vmmProcesses();
      assert.equal(pidsBefore.length, 1);

      await fx.crash();
      assert.deepEqual(fx.vmmProcesses(), pidsBefore, 'the VM outlives the daemon');

      await fx.start();
      const again = await fx.client.get(sb.id);
      assert.equal(again.state, 'running');
      assert.equal(again.vm?.pid, pidsBefore[0]);
      assert.equal(await execOut(fx, sb.id, 'cat /root/marker'), 'before-crash\n');
      const events = await fx.client.events(sb.id);
      assert.ok(events.some((e) => e.type === 'adopted'));

      await fx.client.destroy(sb.id);
      assert.equal(fx.vmmProcesses().length, 0);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
});
