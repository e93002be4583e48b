import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deniedDomains, deniedElements, deniedNamesSeen, renderDeniedAdd } from './denied-domains.js';
import { netNames } from './names.js';
import { renderPolicy } from './nft-sandbox.js';
import { resolvePolicy } from './policy.js';

test('denied domains and the subdomains the guest asked for (from the query log)', () => {
  const policy = resolvePolicy({ deny: [{ domain: 'evil.test' }, { cidr: '203.0.113.7' }, { domain: 'Evil.test' }] });
  assert.deepEqual(deniedDomains(policy), ['evil.test']);
  const log = [
    'Dec  6 19:00:01 dnsmasq[7]: 1 10.210.0.2/4000 query[A] cdn.evil.test from 10.210.0.2',
    'Dec  6 19:00:01 dnsmasq[7]: 1 10.210.0.2/4000 config cdn.evil.test is NXDOMAIN',
    'Dec  6 19:00:02 dnsmasq[7]: 2 10.210.0.2/4001 query[AAAA] x.evil.test. from 10.210.0.2',
    'Dec  6 19:00:03 dnsmasq[7]: 3 10.210.0.2/4002 query[A] notevil.test from 10.210.0.2',
    'Dec  6 19:00:04 dnsmasq[7]: 4 10.210.0.2/4003 query[A] www.kiln.test from 10.210.0.2',
  ].join('\n');
  assert.deepEqual(deniedNamesSeen(log, ['evil.test']), ['cdn.evil.test', 'x.evil.test']);
});

test('learnt addresses live max(TTL, 5 min), at most 1 h; one element per address', () => {
  assert.deepEqual(
    deniedElements([
      { name: 'a.test', address: '203.0.113.5', ttl: 30 },
      { name: 'b.test', address: '203.0.113.5', ttl: 900 },
      { name: 'b.test', address: '203.0.113.6', ttl: 86_400 },
    ]),
    ['203.0.113.5 timeout 900s', '203.0.113.6 timeout 3600s'],
  );
  assert.equal(renderDeniedAdd(netNames('sb-0123456789ab'), []), '');
});

test('the policy drops the deny set before any allow rule and refills it atomically', () => {
  const names = netNames('sb-0123456789ab');
  const script = renderPolicy({ names, policy: resolvePolicy({ deny: [{ domain: 'evil.test' }] }), denied: [{ name: 'evil.test', address: '203.0.113.9', ttl: 60 }] });
  const lines = script.split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  assert.ok(at(/flush set inet kiln_0123456789ab deny_dom4/) < at(/add element inet kiln_0123456789ab deny_dom4 \{ 203\.0\.113\.9 timeout 300s \}/));
  assert.ok(at(/egress ip daddr @deny_dom4 jump drop_flow/) > 0);
  assert.ok(at(/egress ip daddr @deny_dom4 jump drop_flow/) < at(/egress meta l4proto tcp th dport \{ 80, 443 \} jump accept_flow/));
});
