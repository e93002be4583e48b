/**
 * The jail fails closed (vmm/jail-policy.ts): unjailed VMMs only when the operator says
 * --insecure-no-jail, and then /v1/info, every VM start event and `kilnd doctor` name it. (The
 * refusal of a kilnd that is not root is unit-tested: vmm/jail-policy.test.ts.)
 */
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { DaemonFixture, integrationSkipReason, KILND } from './harness.js';

const skip = integrationSkipReason();

describe('the jail mode is named wherever it is not the default', { skip: skip ?? false, timeout: 600_000 }, () => {
  const fx = new DaemonFixture('jail-mode');
  after(async () => fx.close());

  fx.test('--insecure-no-jail (KILN_INSECURE_NO_JAIL=1): QEMU runs unjailed and info, events and doctor say so', async () => {
    await fx.start({ KILN_INSECURE_NO_JAIL: '1' });
    const info = await fx.client.call<{ jail: { mode: string; reason: string }; driver: { jail: string } }>('GET', '/v1/info');
    assert.equal(info.jail.mode, 'insecure-no-jail');
    assert.equal(info.driver.jail, 'insecure-no-jail');
    assert.match(info.jail.reason, /unjailed/);
    const sb = await fx.client.create({ memoryMiB: 768 });
    const started = (await fx.client.events(sb.id)).find((e) => e.type === 'vm-started' || e.type === 'vm-restored');
    assert.equal(started?.data.jail, 'insecure-no-jail');
    const [pid] = fx.vmmProcesses();
    assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+0\s/m, 'QEMU runs as kilnd (root), unjailed');
    assert.equal((await fx.sh(sb.id, 'echo up')).out, 'up\n');
    await fx.client.destroy(sb.id);

    const doctor = spawnSync(process.execPath, [KILND, 'doctor', '--json', '--state-dir', fx.stateDir], { encoding: 'utf8', env: { ...process.env, KILN_INSECURE_NO_JAIL: '1' } });
    const jail = (JSON.parse(doctor.stdout) as { checks: Array<{ name: string; status: string; detail: string }> }).checks.find((c) => c.name === 'jail');
    assert.equal(jail?.status, 'warn');
    assert.match(jail?.detail ?? '', /INSECURE/);
  });

  fx.test('by default (root) QEMU is jailed, and that is named too', async () => {
    await fx.stop();
    await fx.start();
    const info = await fx.client.call<{ jail: { mode: string } }>('GET', '/v1/info');
    assert.equal(info.jail.mode, 'jailed');
    const sb = await fx.client.create({ memoryMiB: 768 });
    const started = (await fx.client.events(sb.id)).find((e) => e.type === 'vm-started' || e.type === 'vm-restored');
    assert.equal(started?.data.jail, 'jailed');
    const [pid] = fx.vmmProcesses();
    assert.doesNotMatch(readFileSync(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+0\s/m, 'QEMU does not run as root');
    await fx.client.destroy(sb.id);
  });
});
