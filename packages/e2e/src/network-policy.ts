/**
 * Part of network.test.ts (same daemon, lab and sandboxes; issue 11): policy changes that
 * change only what they name, denied domains blocked by address, network bytes in stats and
 * /metrics, one kilnd per subnet, and `kiln gc` of another instance's leftovers.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KILND, type DaemonFixture } from './harness.js';
import { LAB, type NetLab, hostLeftovers } from './netlab.js';
import { BB, fetch, type Flows, results } from './net-probe.js';

interface Ctx {
  fx: DaemonFixture;
  lab: NetLab;
  run: (id: string, shell: string) => Promise<{ code: number | null; out: string }>;
  flows: (id: string) => Promise<Flows>;
  ids: () => { a: string; b: string };
}
interface Rule {
  cidr?: string;
  domain?: string;
  protocol: string;
  ports: string[];
}
interface Policy {
  preset: string;
  allow: Rule[];
  deny: Rule[];
}
interface Sample {
  net: { rxBytes: number; txBytes: number } | null;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export function registerPolicyTests({ fx, lab, run, flows, ids }: Ctx): void {
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t("the README's example no longer widens egress: kiln net set patches, audited with before and after", async () => {
    const { b } = ids(); // locked, allow www.kiln.test
    const add = await fx.cli(['net', 'set', b, '--allow', `${LAB.web}:tcp:8080`, '--json']);
    assert.equal(add.code, 0, add.stderr);
    const set = await fx.cli(['net', 'set', b, '--deny', LAB.other, '--json']);
    assert.equal(set.code, 0, set.stderr);
    const p = JSON.parse(set.stdout.toString()) as Policy;
    assert.equal(p.preset, 'locked', 'the preset stays locked');
    assert.deepEqual(p.allow.map((r) => r.domain ?? `${r.cidr}:${r.protocol}:${r.ports.join(',')}`), [LAB.domain, `${LAB.web}/32:tcp:8080`]);
    assert.deepEqual(p.deny.map((r) => r.cidr), [`${LAB.other}/32`]);
    // In force: the added rule opens 8080; outside the allow-list stays closed (preset default would open :80).
    const r = await run(b, `${fetch('p8080', `http://${LAB.web}:8080/`)}; ${fetch('outside', `http://${LAB.other}/`)}; ${fetch('public80', `http://${LAB.web}:80/`)}`);
    assert.deepEqual(results(r.out), { p8080: 0, outside: 143, public80: 0 }, r.out);
    // Audited: the policy record holds how, before and after.
    const audit = await fx.client.call<{ records: Array<{ type: string; data: { how?: string; before?: Policy; after?: Policy } }> }>('GET', `/v1/audit?sandbox=${b}`);
    const rec = audit.records.filter((x) => x.type === 'policy').at(-1);
    assert.equal(rec?.data.how, 'patch');
    assert.deepEqual([rec?.data.before?.deny.length, rec?.data.after?.deny.length, rec?.data.after?.preset], [0, 1, 'locked']);
    // Strict: removing a rule that is not there is refused, naming the field.
    const bad = await fx.client.raw({ method: 'PATCH', path: `/v1/sandboxes/${b}/network/policy`, json: { deny: { remove: [{ cidr: '192.0.2.1' }] } } });
    assert.equal(bad.statusCode, 400);
    assert.match((await bad.toArray()).join(''), /patch\.deny\.remove\[0\].*INVALID_ARGUMENT|INVALID_ARGUMENT.*patch\.deny\.remove\[0\]/);
    const back = await fx.cli(['net', 'set', b, '--remove-allow', `${LAB.web}:tcp:8080`, '--remove-deny', LAB.other, '--json']);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(JSON.parse(back.stdout.toString()), { preset: 'locked', allow: [{ domain: LAB.domain, protocol: 'tcp', ports: ['80', '443'] }], deny: [], allowPrivate: [] });
  });

  t("a denied domain's address is unreachable even when the guest connects by address", async () => {
    const { a } = ids(); // preset default: TCP 80 to public addresses is open
    let r = await run(a, fetch('byaddr', `http://${LAB.other}/`));
    assert.deepEqual(results(r.out), { byaddr: 0 }, `control: reachable before the deny: ${r.out}`);
    const set = await fx.cli(['net', 'set', a, '--deny', LAB.otherDomain]);
    assert.equal(set.code, 0, set.stderr);
    r = await run(a, `( ${BB} timeout 4 ${BB} nslookup ${LAB.otherDomain} >/dev/null 2>&1; echo name=$? ); ${fetch('byaddr', `http://${LAB.other}/`)}`);
    const res = results(r.out);
    assert.notEqual(res.name, 0, `the name does not resolve: ${r.out}`);
    assert.equal(res.byaddr, 143, `by address it is blocked: ${r.out}`);
    const d = (await flows(a)).flows.find((x) => x.verdict === 'drop' && x.dst === LAB.other && x.dstPort === 80);
    assert.equal(d?.reason, 'policy');
    const undo = await fx.cli(['net', 'set', a, '--remove-deny', LAB.otherDomain]);
    assert.equal(undo.code, 0, undo.stderr);
    r = await run(a, fetch('byaddr', `http://${LAB.other}/`));
    assert.deepEqual(results(r.out), { byaddr: 0 }, `reachable again once the deny is removed: ${r.out}`);
  });

  t('network bytes move with traffic in kiln stats and /metrics', async () => {
    const { a } = ids();
    const s0 = await fx.client.call<Sample>('GET', `/v1/sandboxes/${a}/stats?fresh=true`);
    assert.ok(s0.net, `stats carry network counters: ${JSON.stringify(s0)}`);
    const n = 300_000;
    const r = await run(a, `${BB} wget -q -O /dev/null http://${LAB.web}/bytes/${n}; echo dl=$?`);
    assert.deepEqual(results(r.out), { dl: 0 }, r.out);
    const cli = await fx.cli(['stats', a, '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const s1 = JSON.parse(cli.stdout.toString()) as Sample;
    assert.ok(s1.net && s1.net.rxBytes - s0.net.rxBytes >= n, `rx grew by the download: ${JSON.stringify([s0.net, s1.net])}`);
    assert.ok(s1.net.txBytes > s0.net.txBytes, 'tx grew (the request and the ACKs)');
    const text = (await (await fx.client.raw({ method: 'GET', path: '/metrics' })).toArray()).join('');
    const metric = (name: string) => Number(new RegExp(`^${name}\\{sandbox="${a}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    assert.ok(metric('kiln_sandbox_network_receive_bytes') >= s1.net.rxBytes, `metrics: ${text.split('\n').filter((l) => l.includes('network')).join('\n')}`);
    assert.ok(metric('kiln_sandbox_network_transmit_bytes') >= s1.net.txBytes);
  });

  t("an address block that something else holds on the host is skipped, not a failed create", async () => {
    const { a, b } = ids();
    const [o1, o2, o3] = fx.subnet.split('.').map(Number) as [number, number, number];
    const base = ((o1 << 24) | (o2 << 16) | (o3 << 8)) >>> 0;
    const slotOf = (block: string) => ((block.split('/')[0] ?? '').split('.').reduce((n, x) => (n << 8) + Number(x), 0) >>> 0) - base;
    const used = new Set<number>();
    for (const id of [a, b]) used.add(slotOf((await fx.client.call<{ block: string }>('GET', `/v1/sandboxes/${id}/network`)).block) / 8);
    const guestOf = (slot: number) => `${o1}.${o2}.${(slot * 8 + 2) >> 8}.${(slot * 8 + 2) & 255}`;
    // Another instance's leftovers: routes to guests of the free blocks, in the uplink namespace.
    const planted = [0, 1, 2, 3, 4, 5].filter((s) => !used.has(s));
    lab.exec(['ip', 'link', 'add', 'kxa', 'type', 'veth', 'peer', 'name', 'kxb']);
    try {
      for (const dev of ['kxa', 'kxb']) lab.exec(['ip', 'link', 'set', dev, 'up']);
      for (const s of planted) lab.exec(['ip', 'route', 'add', `${guestOf(s)}/32`, 'dev', 'kxa']);
      const c = await fx.client.create({ timeoutMs: 0 });
      const block = (await fx.client.call<{ block: string }>('GET', `/v1/sandboxes/${c.id}/network`)).block;
      assert.ok(!planted.includes(slotOf(block) / 8), `block ${block} is none of the held ones (${planted.join(',')})`);
      await fx.client.destroy(c.id);
    } finally {
      lab.exec(['ip', 'link', 'del', 'kxa']);
    }
  });

  t('a second kilnd on the same subnet refuses to start and says who holds it', async () => {
    const dir = mkdtempSync('/tmp/kiln-it-second-');
    try {
      const p = spawn(process.execPath, [KILND, 'run', '--socket', join(dir, 'kiln.sock'), '--state-dir', dir], {
        env: { ...process.env, KILN_NET_SUBNET: fx.subnet, KILN_NET_UPLINK: 'none' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      p.stderr.on('data', (c: Buffer) => (err += c.toString()));
      p.stdout.resume();
      // It must give up at start-up; one that is still up after 60 s started (and is stopped here).
      const timer = setTimeout(() => p.kill('SIGTERM'), 60_000);
      const code = await new Promise<number | null>((r) => p.on('close', r));
      clearTimeout(timer);
      assert.equal(code, 1, `the second kilnd must refuse to start: ${err}`);
      assert.match(err, /NETWORK_SUBNET_IN_USE/);
      assert.ok(err.includes(`kilnd pid ${fx.pid} (state dir ${fx.stateDir}`), err);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  t('kiln gc removes network objects and resolvers no live kilnd owns, never a live one', async () => {
    const hex = () => randomBytes(6).toString('hex');
    const [orphan, table, lone, held] = [hex(), hex(), hex(), hex()];
    const dir = mkdtempSync('/tmp/kiln-it-foreign-');
    const resolver = (h: string, netns?: string): number => {
      const d = join(dir, 'sandboxes', `sb-${h}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'dnsmasq.conf'), `port=0\npid-file=${join(d, 'dnsmasq.pid')}\n`);
      execFileSync(...((netns ? ['ip', ['netns', 'exec', netns, 'dnsmasq', `--conf-file=${join(d, 'dnsmasq.conf')}`]] : ['dnsmasq', [`--conf-file=${join(d, 'dnsmasq.conf')}`]]) as [string, string[]]));
      return Number(readFileSync(join(d, 'dnsmasq.pid'), 'utf8'));
    };
    const plantNetns = (h: string, addr: string) => {
      ip('netns', 'add', `kiln-${h}`);
      ip('-n', `kiln-${h}`, 'tuntap', 'add', 'dev', `kt${h}`, 'mode', 'tap');
      ip('-n', `kiln-${h}`, 'addr', 'add', addr, 'dev', `kt${h}`);
    };
    /** Whether the process is still there (a zombie awaiting its reaper counts as gone), after up to 5 s. */
    const alive = async (pid: number) => {
      for (let i = 0; i < 50; i++) {
        try {
          if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
        } catch {
          return false;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      return true;
    };
    // A live kilnd on another subnet, as far as the lock says: its netns must survive.
    const lockPath = '/run/kiln/net-10.198.0.0_16.lock';
    writeFileSync(lockPath, JSON.stringify({ pid: 1, stateDir: '/elsewhere', subnet: '10.198.0.0/16', since: 'now' }));
    const holder = spawn('flock', ['--no-fork', '--exclusive', lockPath, 'sleep', '600'], { stdio: 'ignore' });
    try {
      plantNetns(orphan, '10.197.0.1/30'); // a subnet no live kilnd holds, with its resolver still running
      const inNetns = resolver(orphan, `kiln-${orphan}`);
      const loneResolver = resolver(lone); // a resolver whose netns is gone
      execFileSync('nft', ['add', 'table', 'inet', `kiln_${table}`]); // an uplink table without its netns
      await new Promise((r) => setTimeout(r, 300)); // the holder has its lock
      plantNetns(held, '10.198.0.1/30');
      const gc = await fx.cli(['gc']);
      assert.equal(gc.code, 0, gc.stderr);
      const out = gc.stdout.toString();
      assert.ok(out.includes(`netns kiln-${orphan}`) && out.includes(`nft table inet kiln_${table}`) && out.includes(`resolver pid ${loneResolver}`), out);
      assert.ok(!out.includes(held), `a live kilnd's netns is left alone: ${out}`);
      assert.deepEqual([await alive(inNetns), await alive(loneResolver)], [false, false], 'both resolvers are gone');
      assert.deepEqual([hostLeftovers(orphan), hostLeftovers(table)], [[], []]);
      assert.deepEqual(hostLeftovers(held), ['netns']);
      const { b } = ids();
      assert.deepEqual(hostLeftovers(b.slice(3, 15)), ['netns'], "this kilnd's own sandbox is untouched");
      assert.equal(lab.leftovers(b.slice(3, 15)).length, 2);
    } finally {
      holder.kill('SIGKILL');
      for (const h of [orphan, held]) {
        try {
          ip('netns', 'del', `kiln-${h}`);
        } catch {
          // removed by gc
        }
      }
      rmSync(lockPath, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
