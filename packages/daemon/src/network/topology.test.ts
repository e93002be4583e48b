// Real netns, veth, TAP, nftables and dnsmasq (no VM): the whole host side of a sandbox's
// network is built in a throwaway uplink namespace, changed live, and removed without a trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { addressesFor, macFor } from './address-plan.js';
import { nftApply } from './host-cmd.js';
import { type Cidr, parseCidr } from './ipv4.js';
import { netNames } from './names.js';
import { renderPolicy } from './nft-sandbox.js';
import { renderDeniedAdd } from './denied-domains.js';
import { renderUplinkTable } from './nft-uplink.js';
import { resolvePolicy } from './policy.js';
import { resolverPaths } from './resolver.js';
import { buildEgress, buildTap, buildTopology, findNetworkResources, removeTopology } from './topology.js';

const sh = (...a: string[]) => execFileSync(a[0] as string, a.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const skip = process.getuid?.() !== 0 ? 'needs root (netns, nftables)' : (() => {
  try {
    sh('dnsmasq', '--version');
    sh('nft', '--version');
    return false;
  } catch {
    return 'needs nft and dnsmasq (scripts/setup.sh installs them)';
  }
})();

test('build, change live and remove a sandbox network in an uplink namespace', { skip }, async () => {
  const uplinkNs = `ktest-${randomBytes(3).toString('hex')}`;
  const id = `sb-${randomBytes(6).toString('hex')}`;
  const names = netNames(id);
  const runDir = mkdtempSync(join(tmpdir(), 'kiln-topo-'));
  const uplink = { kind: 'netns' as const, name: uplinkNs };
  const subnet = parseCidr('10.210.0.0/16') as Cidr;
  const addresses = addressesFor(subnet, 5);
  sh('ip', 'netns', 'add', uplinkNs);
  try {
    const policy = resolvePolicy({ preset: 'locked', allow: [{ domain: 'www.kiln.test' }, { cidr: '198.51.100.0/24', protocol: 'udp', ports: [5000] }], deny: [{ domain: 'bad.kiln.test' }] });
    await buildTopology({ names, addresses, mac: macFor(names.idHex), subnet: '10.210.0.0/16', uplink, hostAddrs: ['192.0.2.2'], dnsUpstream: ['198.51.100.53'], policy, runDir });

    assert.match(sh('ip', 'netns', 'list'), new RegExp(names.netns));
    assert.match(sh('ip', '-n', names.netns, '-o', 'addr', 'show', 'dev', names.tap), /10\.210\.0\.41\/30/);
    assert.match(sh('ip', '-n', uplinkNs, '-o', 'addr', 'show', 'dev', names.vethUplink), /10\.210\.0\.45\/30/);
    assert.match(sh('ip', '-n', uplinkNs, 'route'), /10\.210\.0\.42 via 10\.210\.0\.46/);
    assert.match(sh('ip', '-n', names.netns, 'route'), /default via 10\.210\.0\.45/);
    const tables = sh('ip', 'netns', 'exec', names.netns, 'nft', 'list', 'tables');
    assert.match(tables, new RegExp(`table inet ${names.table}`));
    assert.match(tables, new RegExp(`table netdev ${names.table}`));
    assert.match(sh('ip', 'netns', 'exec', uplinkNs, 'nft', 'list', 'tables'), new RegExp(names.table));
    const ruleset = sh('ip', 'netns', 'exec', names.netns, 'nft', 'list', 'table', 'inet', names.table);
    assert.match(ruleset, /198\.51\.100\.0\/24 \. udp \. 5000/);
    assert.doesNotMatch(ruleset, /^\s*tcp dport \{ 80, 443 \} jump accept_flow/m, 'locked: no blanket web access');
    const conf = sh('cat', resolverPaths(runDir).conf);
    assert.match(conf, /nftset=\/www\.kiln\.test\/4#inet#kiln_[0-9a-f]+#adom_/);
    assert.match(conf, /address=\/bad\.kiln\.test\//);
    assert.ok(sh('ip', 'netns', 'pids', names.netns).trim(), 'the resolver runs inside the netns');
    assert.ok((await findNetworkResources(uplink)).has(names.idHex));

    // Denied-domain addresses: renewing an address already in the set is valid nft (add, delete, add).
    const learnt = [{ name: 'bad.kiln.test', address: '203.0.113.77', ttl: 30 }];
    await nftApply(renderDeniedAdd(names, learnt), names.netns);
    await nftApply(renderDeniedAdd(names, learnt), names.netns);
    assert.match(sh('ip', 'netns', 'exec', names.netns, 'nft', 'list', 'set', 'inet', names.table, 'deny_dom4'), /203\.0\.113\.77 timeout 5m/);
    assert.match(sh('ip', 'netns', 'exec', names.netns, 'nft', 'list', 'chain', 'inet', names.table, 'egress'), /ip daddr @deny_dom4 jump drop_flow/);

    await nftApply(renderPolicy({ names, policy: resolvePolicy({ preset: 'default', deny: [{ cidr: '203.0.113.0/24' }] }) }), names.netns);
    const changed = sh('ip', 'netns', 'exec', names.netns, 'nft', 'list', 'table', 'inet', names.table);
    assert.match(changed, /^\s*tcp dport \{ 80, 443 \} jump accept_flow/m);
    assert.doesNotMatch(changed, /198\.51\.100\.0\/24 \. udp/);
    await nftApply(renderPolicy({ names, policy: resolvePolicy({ preset: 'none' }) }), names.netns);
    assert.doesNotMatch(sh('ip', 'netns', 'exec', names.netns, 'nft', 'list', 'chain', 'inet', names.table, 'resolver'), /accept_flow/, 'none: not even DNS');

    // The host uplink's table (input guard, masquerade) is valid nft too (checked here in the
    // throwaway namespace, never in the root one).
    await nftApply(`delete table inet ${names.table}\n${renderUplinkTable({ names, block: addresses.block, sandboxVeth: addresses.sandboxVeth, dnsUpstream: ['198.51.100.53'], host: true })}`, uplinkNs);
    assert.match(sh('ip', 'netns', 'exec', uplinkNs, 'nft', 'list', 'table', 'inet', names.table), /masquerade/);

    await removeTopology(names, uplink, runDir);
    await removeTopology(names, uplink, runDir); // idempotent
    assert.doesNotMatch(sh('ip', 'netns', 'list'), new RegExp(names.idHex));
    assert.doesNotMatch(sh('ip', '-n', uplinkNs, '-o', 'link'), new RegExp(names.idHex));
    assert.doesNotMatch(sh('ip', 'netns', 'exec', uplinkNs, 'nft', 'list', 'tables'), new RegExp(names.idHex));
    assert.doesNotMatch(sh('nft', 'list', 'tables'), new RegExp(names.idHex));
    assert.ok(!(await findNetworkResources(uplink)).has(names.idHex));
  } finally {
    await removeTopology(names, uplink, runDir).catch(() => undefined);
    sh('ip', 'netns', 'del', uplinkNs);
    rmSync(runDir, { recursive: true, force: true });
  }
});

test('in two stages: the first holds only the netns and its TAP, the second adds uplink, policy and resolver', { skip }, async () => {
  const uplinkNs = `ktest-${randomBytes(3).toString('hex')}`;
  const id = `sb-${randomBytes(6).toString('hex')}`;
  const names = netNames(id);
  const runDir = mkdtempSync(join(tmpdir(), 'kiln-topo-'));
  const uplink = { kind: 'netns' as const, name: uplinkNs };
  const params = { names, addresses: addressesFor(parseCidr('10.210.0.0/16') as Cidr, 7), mac: macFor(names.idHex), subnet: '10.210.0.0/16', uplink, hostAddrs: [], dnsUpstream: [], policy: resolvePolicy(undefined), runDir };
  sh('ip', 'netns', 'add', uplinkNs);
  try {
    await buildTap(params);
    assert.match(sh('ip', '-n', names.netns, '-o', 'addr', 'show', 'dev', names.tap), /10\.210\.0\.57\/30/);
    assert.equal(sh('ip', 'netns', 'exec', names.netns, 'sysctl', '-n', 'net.ipv6.conf.' + names.tap + '.disable_ipv6').trim(), '1', 'the TAP is born with IPv6 off');
    assert.doesNotMatch(sh('ip', '-n', names.netns, '-o', 'link'), new RegExp(names.vethSandbox), 'no way out yet');
    assert.equal(sh('ip', '-n', names.netns, 'route', 'show', 'default').trim(), '');
    assert.equal(sh('ip', 'netns', 'exec', names.netns, 'nft', 'list', 'tables').trim(), '');
    assert.equal(sh('ip', 'netns', 'pids', names.netns).trim(), '', 'no resolver yet');

    await buildEgress(params);
    assert.match(sh('ip', '-n', names.netns, 'route'), /default via 10\.210\.0\.61/);
    assert.match(sh('ip', '-n', uplinkNs, 'route'), /10\.210\.0\.58 via 10\.210\.0\.62/);
    assert.match(sh('ip', 'netns', 'exec', names.netns, 'nft', 'list', 'tables'), new RegExp(`table inet ${names.table}`));
    assert.match(sh('ip', 'netns', 'exec', uplinkNs, 'nft', 'list', 'tables'), new RegExp(names.table));
    assert.ok(sh('ip', 'netns', 'pids', names.netns).trim(), 'the resolver runs inside the netns');
  } finally {
    await removeTopology(names, uplink, runDir).catch(() => undefined);
    sh('ip', 'netns', 'del', uplinkNs);
    rmSync(runDir, { recursive: true, force: true });
  }
});

test('a failure half-way through leaves nothing behind', { skip }, async () => {
  const id = `sb-${randomBytes(6).toString('hex')}`;
  const names = netNames(id);
  const runDir = mkdtempSync(join(tmpdir(), 'kiln-topo-'));
  const uplink = { kind: 'netns' as const, name: `ktest-missing-${randomBytes(3).toString('hex')}` };
  try {
    await assert.rejects(
      buildTopology({ names, addresses: addressesFor(parseCidr('10.210.0.0/16') as Cidr, 6), mac: macFor(names.idHex), subnet: '10.210.0.0/16', uplink, hostAddrs: [], dnsUpstream: [], policy: resolvePolicy(undefined), runDir }),
      { code: 'NETWORK_COMMAND_FAILED' },
    );
    assert.doesNotMatch(sh('ip', 'netns', 'list'), new RegExp(names.idHex));
    assert.doesNotMatch(sh('ip', '-o', 'link'), new RegExp(names.idHex));
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
});
