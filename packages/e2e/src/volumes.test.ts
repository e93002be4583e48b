/**
 * Persistent volumes on real VMs (restored from the template, the volume hot-plugged after the
 * restore): a file written in one sandbox is read in the next; a second writer is refused
 * naming the holder; readers share; removal while attached, snapshot and a quota overrun are
 * refused with their codes; pause/resume keeps the mount; `kiln volume cp` copies a tree in and
 * out through helper sandboxes; nothing is left behind.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();
const GiB = 1024 ** 3;

describe('persistent volumes', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('volumes');
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);
  let holder = '';
  const volFile = () => join(fx.stateDir, 'volumes', '_admin', 'work.ext4');
  const refused = async (p: Promise<unknown>, code: RegExp): Promise<string> => {
    try {
      await p;
    } catch (err) {
      assert.match(String((err as Error).message) + String((err as { code?: string }).code), code);
      return (err as Error).message;
    }
    assert.fail(`expected ${code}`);
  };

  before(async () => fx.start({ KILN_VOLUME_QUOTA_GIB: '2' }));
  after(async () => fx.close());

  t('a file written to a volume in one sandbox is read in the next (created with the CLI)', async () => {
    const made = await fx.cli(['volume', 'create', 'work', '--size', '1G']);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(statSync(volFile()).size, GiB);
    assert.ok(statSync(volFile()).blocks * 512 < 64 * 1024 * 1024, 'the image is sparse');
    const a = await fx.client.create({ volumes: [{ name: 'work', path: '/data' }] });
    const ev = await fx.client.events(a.id);
    assert.ok(ev.some((e) => e.type === 'vm-restored'), 'restored from the template, the volume hot-plugged after');
    assert.ok(ev.some((e) => e.type === 'volumes-attached'));
    const w = await fx.sh(a.id, "su user -c 'echo persisted-$((6*7)) > /data/note.txt' && sync && stat -c %U /data/note.txt && findmnt -no OPTIONS /data");
    assert.equal(w.code, 0, w.all);
    assert.match(w.out, /^user\n/, 'the guest user owns what it wrote');
    assert.match(w.out, /\brw\b/);
    await fx.client.destroy(a.id);
    assert.equal(statSync(volFile()).uid, 0, 'a volume nobody holds is root’s again');

    const out = await fx.cli(['create', '--volume', 'work:/srv/work']);
    assert.equal(out.code, 0, out.stderr);
    const b = out.stdout.toString().trim().split('\n').at(-1) ?? '';
    const r = await fx.sh(b, 'cat /srv/work/note.txt');
    assert.equal(r.out.trim(), 'persisted-42');
    // The next steps use b as the holder.
    holder = b;
  });

  t('while one sandbox writes: a second writer or a reader is refused naming it; rm and snapshot are refused; quota holds', async () => {
    const msg = await refused(fx.client.create({ volumes: [{ name: 'work', path: '/data' }] }), /VOLUME_BUSY/);
    assert.match(msg, new RegExp(holder));
    await refused(fx.client.create({ volumes: [{ name: 'work', path: '/data', readOnly: true }] }), /VOLUME_BUSY/);
    const rm = await fx.cli(['volume', 'rm', 'work']);
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, /VOLUME_IN_USE|attached/);
    await refused(fx.client.call('POST', `/v1/sandboxes/${holder}/snapshot`, { name: 'with-volume' }), /VOLUME_ATTACHED/);
    await refused(fx.client.call('POST', '/v1/volumes', { name: 'big', sizeBytes: 1.5 * GiB }), /VOLUME_QUOTA/);
    const ls = await fx.client.call<{ volumes: Array<{ name: string; attachedTo: Array<{ sandboxId: string }> }> }>('GET', '/v1/volumes');
    assert.deepEqual(ls.volumes.map((v) => [v.name, v.attachedTo.map((x) => x.sandboxId)]), [['work', [holder]]]);
  });

  t('pause and resume keep the volume mounted and writable', async () => {
    await fx.client.call('POST', `/v1/sandboxes/${holder}/pause`);
    await fx.client.call('POST', `/v1/sandboxes/${holder}/resume`);
    const r = await fx.sh(holder, 'echo after-resume >> /srv/work/note.txt && sync && cat /srv/work/note.txt');
    assert.equal(r.out, 'persisted-42\nafter-resume\n', r.all);
    await fx.client.destroy(holder);
  });

  t('kiln volume cp copies a tree into a volume and back out', async () => {
    const dir = mkdtempSync('/tmp/kiln-it-volcp-');
    try {
      mkdirSync(join(dir, 'in', 'sub'), { recursive: true });
      writeFileSync(join(dir, 'in', 'a.txt'), 'alpha\n');
      writeFileSync(join(dir, 'in', 'sub', 'b.bin'), Buffer.from([0, 1, 2, 255]));
      const up = await fx.cli(['volume', 'cp', join(dir, 'in'), 'work:/tree']);
      assert.equal(up.code, 0, up.stderr);
      const down = await fx.cli(['volume', 'cp', 'work:/tree', join(dir, 'out')]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(readFileSync(join(dir, 'out', 'a.txt'), 'utf8'), 'alpha\n');
      assert.deepEqual([...readFileSync(join(dir, 'out', 'sub', 'b.bin'))], [0, 1, 2, 255]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  t('read-only attach by two at once; neither can write; a writer then is refused', async () => {
    const [r1, r2] = await Promise.all([
      fx.client.create({ volumes: [{ name: 'work', path: '/data', readOnly: true }] }),
      fx.client.create({ volumes: [{ name: 'work', path: '/data', readOnly: true }] }),
    ]);
    try {
      for (const id of [r1.id, r2.id]) {
        const r = await fx.sh(id, 'cat /data/note.txt /data/tree/a.txt; findmnt -no OPTIONS /data; touch /data/x 2>&1 || echo refused');
        assert.match(r.out, /^persisted-42\nafter-resume\nalpha\nro[,\n]/, r.all);
        assert.match(r.out, /Read-only file system[\s\S]*refused/);
      }
      await refused(fx.client.create({ volumes: [{ name: 'work', path: '/data' }] }), /VOLUME_BUSY/);
    } finally {
      await Promise.all([fx.client.destroy(r1.id), fx.client.destroy(r2.id)]);
    }
  });

  t('volumes outlive sandboxes, and are removed once free', async () => {
    assert.ok(existsSync(volFile()));
    const rm = await fx.cli(['volume', 'rm', 'work']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.ok(!existsSync(volFile()));
    const ls = await fx.cli(['volume', 'ls', '--json']);
    assert.deepEqual(JSON.parse(ls.stdout.toString()), []);
  });
});
