/**
 * The VMM boundary on disk (docs/hardening.md): whatever a compromised QEMU plants in the one
 * directory it can write never makes root touch a host file. Symlinks under every name root
 * reads or writes in a run dir (or did, before the boundary: vmm.log, the resolver's files,
 * a snapshot's state file, …) are planted in the VMM's directory (as root, which is what a
 * compromised QEMU could do there), each pointing at a canary file outside, before a network
 * policy change, a snapshot and a kilnd restart. Every operation succeeds and every canary
 * keeps its content, mode and owner.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();

/** Names root has touched in a run dir: each becomes a planted link in the VMM's directory. */
const NAMES = ['vmm.log', 'dnsmasq.conf', 'dnsmasq.pid', 'dns.log', 'dns.log.1', 'console.log', 'snapshot.state', 'migrate.sock'];

describe('the VMM boundary: links planted where QEMU can write never reach root', { skip: skip ?? false, timeout: 900_000 }, () => {
  const fx = new DaemonFixture('vmm-boundary');
  const t = fx.test.bind(fx);
  const canaries = mkdtempSync('/tmp/kiln-canary-');
  let id = '';
  before(async () => {
    await fx.start();
    id = (await fx.client.create({ memoryMiB: 768 })).id;
  });
  after(async () => {
    for (const name of ['boundary-snap', 'boundary-boot']) await fx.client.call('DELETE', `/v1/templates/${name}`).catch(() => undefined);
    await fx.close();
    rmSync(canaries, { recursive: true, force: true });
  });

  /** The directory the jailed QEMU may write: the one holding its QMP socket. */
  const vmmDir = () => {
    const run = join(fx.stateDir, 'sandboxes', id);
    return existsSync(join(run, 'vmm', 'qmp.sock')) ? join(run, 'vmm') : run;
  };

  /** Replaces each name in the VMM's directory by a link to a fresh canary of its own. */
  const plant = (phase: string): string[] => {
    const made: string[] = [];
    for (const name of NAMES) {
      const canary = join(canaries, `${phase}-${name}`);
      writeFileSync(canary, `canary ${phase} ${name}\n`);
      chmodSync(canary, 0o640);
      const link = join(vmmDir(), name);
      rmSync(link, { force: true });
      symlinkSync(canary, link);
      made.push(canary);
    }
    return made;
  };

  const untouched = (made: string[]) => {
    for (const canary of made) {
      const st = statSync(canary);
      const name = canary.slice(canaries.length + 1);
      assert.equal(readFileSync(canary, 'utf8'), `canary ${name.replace('-', ' ')}\n`, `${name}: content`);
      assert.equal(st.mode & 0o7777, 0o640, `${name}: mode`);
      assert.deepEqual([st.uid, st.gid], [0, 0], `${name}: owner`);
    }
  };

  t('a network policy change (the resolver restarts) writes none of them', async () => {
    const made = plant('policy');
    await fx.client.call('PUT', `/v1/sandboxes/${id}/network/policy`, { deny: [{ domain: 'blocked.example' }] });
    const dns = (await (await fx.client.raw({ method: 'GET', path: `/v1/sandboxes/${id}/network/dns` })).toArray()).join('');
    assert.doesNotMatch(dns, /canary/, 'the query log is not read through a link');
    // the resolver really restarted, with the new policy in root's own config file
    assert.match(readFileSync(join(fx.stateDir, 'sandboxes', id, 'dnsmasq.conf'), 'utf8'), /^address=\/blocked\.example\/$/m);
    untouched(made);
  });

  t('a snapshot neither writes nor chmods any of them', async () => {
    const made = plant('snapshot');
    const tpl = await fx.client.call<{ name: string; stateBytes: number }>('POST', `/v1/sandboxes/${id}/snapshot`, { name: 'boundary-snap' });
    assert.ok(tpl.stateBytes > 0);
    // the fork restores: the state kilnd received is whole
    const child = await fx.client.create({ template: 'boundary-snap' });
    assert.equal((await fx.sh(child.id, 'echo forked')).out, 'forked\n');
    await fx.client.destroy(child.id);
    untouched(made);
    await fx.client.call('DELETE', '/v1/templates/boundary-snap');
  });

  t('a kilnd restart (adopt, reconcile) touches none of them', async () => {
    const made = plant('restart');
    await fx.crash();
    await fx.start();
    const again = await fx.client.get(id);
    assert.equal(again.state, 'running');
    assert.equal((await fx.sh(id, 'echo adopted')).out, 'adopted\n');
    await fx.client.call('PUT', `/v1/sandboxes/${id}/network/policy`, {});
    untouched(made);
    await fx.client.destroy(id);
    untouched(made);
  });

  t("a boot template built by the jailed VMM (root made its RAM file and disk) is root's alone and restores", async () => {
    const tpl = await fx.client.call<{ name: string; key: string }>('POST', '/v1/templates', { name: 'boundary-boot', memoryMiB: 512, vcpus: 1, diskGiB: 2 });
    try {
      const dir = join(fx.stateDir, 'templates', tpl.key);
      const entries = readdirSync(dir).sort();
      assert.deepEqual(entries.filter((n) => ['vmm', 'jail', 'migrate.sock'].includes(n)), [], 'no VMM directory, jail or socket is kept');
      for (const n of entries) {
        const st = lstatSync(join(dir, n));
        assert.ok(st.isFile(), `${n} is a file`);
        assert.deepEqual([st.uid, st.gid], [0, 0], `${n} is root's`);
      }
      const sb = await fx.client.create({ template: 'boundary-boot' });
      assert.equal((await fx.sh(sb.id, 'echo restored')).out, 'restored\n');
      await fx.client.destroy(sb.id);
    } finally {
      await fx.client.call('DELETE', '/v1/templates/boundary-boot');
    }
  });
});
