/**
 * Sandbox networking end to end: real microVMs, real TAP devices in per-sandbox network
 * namespaces, real nftables and dnsmasq. The "internet" is a namespace this test makes
 * (netlab.ts); no packet leaves the machine. Two sandboxes: A (default preset) and B (locked,
 * allow-list only); a third is created only to be killed during its creation.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { hostLeftovers, LAB, NetLab } from './netlab.js';
import { BB, fetch, type Flows, hostAddress, type NetView, results } from './net-probe.js';
import { registerPolicyTests } from './network-policy.js';

describe('sandbox network and egress policy', { skip: integrationSkipReason() ?? false, timeout: 900_000 }, () => {
  const lab = new NetLab();
  const fx = new DaemonFixture('network');
  let a = '';
  let b = '';
  let hostServer: Server;
  let hostPort = 0;
  const hostIp = hostAddress(fx.subnet);

  const run = async (id: string, shell: string, timeoutMs = 120_000): Promise<{ code: number | null; out: string }> => {
    const chunks: Buffer[] = [];
    let code: number | null = null;
    for await (const ev of fx.client.exec(id, { shell, timeoutMs })) {
      if (ev.type === 'stdout' || ev.type === 'stderr') chunks.push(Buffer.from(ev.data, 'base64'));
      else if (ev.type === 'exit') code = ev.exitCode;
      else if (ev.type === 'error') throw new Error(`${ev.error.code}: ${ev.error.message}`);
    }
    return { code, out: Buffer.concat(chunks).toString() };
  };
  const flows = (id: string) => fx.client.call<Flows>('GET', `/v1/sandboxes/${id}/network/flows`);
  const net = (id: string) => fx.client.call<NetView>('GET', `/v1/sandboxes/${id}/network`);
  const guestIp = async (id: string) => (await net(id)).address.split('/')[0] as string;
  const dropped = (f: Flows, dst: string, dstPort: number | null) => f.flows.find((x) => x.verdict === 'drop' && x.dst === dst && (dstPort === null || x.dstPort === dstPort));

  before(async () => {
    hostServer = createServer((s) => s.end('host service\n'));
    await new Promise<void>((r) => hostServer.listen(0, '0.0.0.0', r));
    hostPort = (hostServer.address() as { port: number }).port;
    await lab.start();
    await fx.start({ KILN_NET_UPLINK: lab.uplink, KILN_NET_DNS: LAB.dns });
    a = (await fx.client.create({ timeoutMs: 0 })).id;
    b = (await fx.client.create({ timeoutMs: 0, network: { preset: 'locked', allow: [{ domain: LAB.domain }] } })).id;
    process.stderr.write(`sandboxes: A ${a} (default), B ${b} (locked); lab ${lab.name}\n`);
  });

  after(async () => {
    await fx.close();
    await lab.stop();
    hostServer.close();
  });

  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t('the guest gets its address at run time, resolves through its resolver and reaches 80 and 443', async () => {
    const n = await net(a);
    assert.match(n.address, new RegExp(`^${fx.subnet.split('.').slice(0, 2).join('\\.')}\\.\\d+\\.\\d+/30$`));
    assert.equal(n.netns, `kiln-${a.slice(3, 15)}`);
    const r = await run(a, `ip -4 -o addr show; ip link show; cat /etc/resolv.conf; ${BB} nslookup ${LAB.domain}; ${fetch('p80', `http://${LAB.domain}/`)}; ${fetch('p443', `http://${LAB.web}:443/`)}; cat /tmp/p80.out /tmp/p443.out`);
    assert.ok(r.out.includes(`inet ${n.address}`), r.out);
    assert.ok(r.out.includes(`link/ether ${n.mac}`), r.out);
    assert.ok(r.out.includes(`nameserver ${n.gateway}`), r.out);
    assert.match(r.out, new RegExp(`Server:\\s+${n.gateway.replace(/\./g, '\\.')}`));
    assert.match(r.out, new RegExp(`Address: ${LAB.web.replace(/\./g, '\\.')}`));
    assert.deepEqual(results(r.out), { p80: 0, p443: 0 }, r.out);
    assert.ok(r.out.includes(`hello ${LAB.web}:80`) && r.out.includes(`hello ${LAB.web}:443`), r.out);
    const f = await flows(a);
    for (const port of [80, 443]) {
      const x = f.flows.find((y) => y.verdict === 'accept' && y.dst === LAB.web && y.dstPort === port);
      assert.ok(x && x.packetsOut > 0 && x.packetsIn > 0, `accepted flow to :${port} with packets both ways: ${JSON.stringify(f.flows)}`);
    }
    assert.ok(f.flows.some((y) => y.verdict === 'accept' && y.dst === n.gateway && y.dstPort === 53), 'DNS to the resolver is an accepted flow');
    assert.ok(f.counters.bytesOut! > 0 && f.counters.bytesIn! > 0);
    const log = (await (await fx.client.raw({ method: 'GET', path: `/v1/sandboxes/${a}/network/dns` })).toArray()).join('');
    assert.ok(log.includes(`query[A] ${LAB.domain}`), `the resolver logs the query: ${log.slice(-500)}`);
  });

  t('a container in the guest Docker reaches the server through dockerd NAT and the sandbox resolver', async () => {
    await fx.client.upload(a, '/root/tiny/bin/busybox', (await import('node:stream')).Readable.from([readFileSync('/bin/busybox')]), { mode: 0o755, parents: true });
    const r = await run(a, `cd /root/tiny && ln -sf busybox bin/sh && tar -c . | docker import - tiny:latest >/dev/null && docker run --rm tiny:latest /bin/busybox wget -q -O - http://${LAB.domain}/; echo c=$?`);
    assert.equal(results(r.out).c, 0, r.out);
    assert.ok(r.out.includes(`hello ${LAB.web}:80`), r.out);
  });

  t('blocked: another port, the host, the gateway, metadata, another sandbox, direct DNS; each a dropped flow', async () => {
    const bIp = await guestIp(b);
    const { gateway } = await net(a);
    await run(b, `${BB} httpd -p 8000 -h /tmp`); // something listening in B
    // Positive control: the host listener answers from the host itself.
    await new Promise<void>((resolve, reject) => connect(hostPort, hostIp).on('data', () => resolve()).on('error', reject));
    const r = await run(
      a,
      [
        fetch('other_port', `http://${LAB.web}:8080/`),
        fetch('host', `http://${hostIp}:${hostPort}/`),
        fetch('gateway', `http://${gateway}:${hostPort}/`),
        fetch('metadata', 'http://169.254.169.254/latest/meta-data/'),
        fetch('sandbox', `http://${bIp}:8000/`),
        `( ${BB} timeout 6 ${BB} nslookup ${LAB.domain} ${LAB.dns} >/dev/null 2>&1; echo dns=$? )`,
      ].map((c) => `${c} &`).join(' ') + ' wait',
    );
    const res = results(r.out);
    for (const k of ['other_port', 'host', 'gateway', 'metadata', 'sandbox', 'dns']) assert.notEqual(res[k], 0, `${k} must fail: ${r.out}`);
    const f = await flows(a);
    const expect: Array<[string, number, string]> = [
      [LAB.web, 8080, 'policy'],
      [hostIp, hostPort, 'host'],
      [gateway, hostPort, 'host'],
      ['169.254.169.254', 80, 'reserved'],
      [bIp, 8000, 'sandbox'],
      [LAB.dns, 53, 'dns'],
    ];
    for (const [dst, port, reason] of expect) {
      const d = dropped(f, dst, port);
      assert.ok(d, `a dropped flow to ${dst}:${port}: ${JSON.stringify(f.flows.filter((x) => x.verdict === 'drop'))}`);
      assert.equal(d.reason, reason, `${dst}:${port}`);
    }
    assert.ok(f.counters.packetsDropped! >= expect.length);
  });

  t('locked: the allow-listed domain is reachable, anything else is not', async () => {
    const r = await run(b, `${fetch('allowed', `http://${LAB.domain}/`)}; ${fetch('outside', `http://${LAB.otherDomain}/`)}; ${fetch('same_host_8080', `http://${LAB.domain}:8080/`)}`);
    assert.deepEqual(results(r.out), { allowed: 0, outside: 143, same_host_8080: 143 }, r.out);
    const f = await flows(b);
    assert.equal(dropped(f, LAB.other, 80)?.reason, 'policy');
    assert.equal(dropped(f, LAB.web, 8080)?.reason, 'policy');
  });

  t('a spoofed source address from the guest is dropped', async () => {
    const ip = await guestIp(a);
    const spoofed = ip.replace(/\d+$/, (n) => String(Number(n) + 60));
    const probe = (src: string) =>
      `/opt/kiln/bin/node -e "const s=require('net').connect({host:'${LAB.web}',port:80,localAddress:'${src}'});s.on('connect',()=>{console.log('${src}=0');process.exit(0)});s.on('error',()=>{console.log('${src}=1');process.exit(0)});setTimeout(()=>{console.log('${src}=2');process.exit(0)},4000)"`;
    const r = await run(a, `ip addr add ${spoofed}/32 dev eth0 && ${probe(ip)}; ${probe(spoofed)}; ip addr del ${spoofed}/32 dev eth0`);
    assert.ok(r.out.includes(`${ip}=0`), `the real address connects: ${r.out}`);
    assert.ok(!r.out.includes(`${spoofed}=0`), `the spoofed address must not connect: ${r.out}`);
    const f = await flows(a);
    const s = f.flows.find((x) => x.reason === 'spoof' && x.src === spoofed);
    assert.ok(s && s.packetsOut > 0, `a spoof drop from ${spoofed}: ${JSON.stringify(f.flows.filter((x) => x.reason === 'spoof'))}`);
    assert.ok(f.counters.packetsSpoofed! > 0);
  });

  t('a policy change of a running sandbox takes effect at once (CLI and API)', async () => {
    const set = await fx.cli(['net', 'set', a, '--deny', `${LAB.web}:tcp:80`, '--json']);
    assert.equal(set.code, 0, set.stderr);
    let r = await run(a, `${fetch('p80', `http://${LAB.web}/`)}; ${fetch('p443', `http://${LAB.web}:443/`)}`);
    assert.deepEqual(results(r.out), { p80: 143, p443: 0 }, r.out);
    await fx.client.call('PUT', `/v1/sandboxes/${a}/network/policy`, { preset: 'none' });
    r = await run(a, `${fetch('p443', `http://${LAB.web}:443/`)}; ( ${BB} timeout 4 ${BB} nslookup ${LAB.domain} >/dev/null 2>&1; echo dns=$? )`);
    assert.deepEqual(results(r.out), { p443: 143, dns: 143 }, `preset none: nothing, not even DNS: ${r.out}`);
    await fx.client.call('PUT', `/v1/sandboxes/${a}/network/policy`, {});
    r = await run(a, fetch('p80', `http://${LAB.domain}/`));
    assert.deepEqual(results(r.out), { p80: 0 }, r.out);
    const bad = await fx.cli(['net', 'set', a, '--allow', '10.0.0.0/8']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /patch\.allow\.add\[0\]\.cidr.*allowPrivate.*INVALID_ARGUMENT/);
    const flowsCli = await fx.cli(['net', 'flows', a, '--verdict', 'drop']);
    assert.equal(flowsCli.code, 0, flowsCli.stderr);
    assert.match(flowsCli.stdout.toString(), /drop\s+policy\s+tcp\s+\S+\s+198\.51\.100\.10:80/);
  });

  registerPolicyTests({ fx, lab, run, flows, ids: () => ({ a, b }) });

  t('kiln rm leaves no netns, link or nft table of the sandbox', async () => {
    const hex = a.slice(3, 15);
    assert.deepEqual(hostLeftovers(hex), ['netns'], 'before: the netns exists (the TAP is inside it)');
    assert.deepEqual(lab.leftovers(hex).length, 2, 'before: veth end and uplink table in the uplink namespace');
    const rm = await fx.cli(['rm', a]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(hostLeftovers(hex), []);
    assert.deepEqual(lab.leftovers(hex), []);
  });

  t('a create that fails half-way leaves nothing either', async () => {
    const c = await fx.client.create({ timeoutMs: 0 }, false);
    let pid: number | undefined;
    for (let i = 0; i < 2000 && !pid; i++) {
      pid = (await fx.client.get(c.id)).vm?.pid;
      if (!pid) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(pid, 'the VM started');
    process.kill(pid, 'SIGKILL');
    let state = '';
    for (let i = 0; i < 600 && state !== 'failed'; i++) {
      state = (await fx.client.get(c.id)).state;
      if (state !== 'failed') await new Promise((r) => setTimeout(r, 100));
    }
    const rec = await fx.client.get(c.id);
    assert.equal(rec.state, 'failed');
    assert.ok(rec.error?.step, `it failed during creation: ${JSON.stringify(rec.error)}`);
    const hex = c.id.slice(3, 15);
    assert.deepEqual(hostLeftovers(hex), []);
    assert.deepEqual(lab.leftovers(hex), []);
    await fx.client.destroy(c.id);
  });
  t('after kilnd is SIGKILLed during a create, the restarted kilnd removes that network', async () => {
    const d = await fx.client.create({ timeoutMs: 0 }, false);
    for (let i = 0; i < 2000 && !(await fx.client.get(d.id)).vm; i++) await new Promise((r) => setTimeout(r, 10));
    const hex = d.id.slice(3, 15);
    assert.deepEqual(hostLeftovers(hex), ['netns'], 'the network was built');
    await fx.crash();
    await fx.start({ KILN_NET_UPLINK: lab.uplink, KILN_NET_DNS: LAB.dns });
    const rec = await fx.client.get(d.id);
    assert.equal(rec.state, 'failed');
    assert.equal(rec.error?.code, 'DAEMON_RESTARTED');
    assert.deepEqual(hostLeftovers(hex), []);
    assert.deepEqual(lab.leftovers(hex), []);
    assert.ok((await fx.client.get(b)).state === 'running', 'the other sandbox was adopted, network and all');
    const r = await run(b, fetch('allowed', `http://${LAB.domain}/`));
    assert.deepEqual(results(r.out), { allowed: 0 }, r.out);
    await fx.client.destroy(d.id);
  });
});
