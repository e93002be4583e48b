import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolvePolicy } from './policy.js';

const fieldOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    const e = err as { code?: string; details?: { field?: string } };
    assert.equal(e.code, 'INVALID_ARGUMENT');
    return e.details?.field ?? '';
  }
  assert.fail('expected INVALID_ARGUMENT');
};

test('no policy means the default preset with empty lists', () => {
  assert.deepEqual(resolvePolicy(undefined), { preset: 'default', allow: [], deny: [], allowPrivate: [] });
});

test('rules are normalised: protocol and port defaults, ranges, domains lowercased', () => {
  const p = resolvePolicy({
    preset: 'locked',
    allow: [{ domain: 'Registry.NPMJS.org.' }, { cidr: '198.51.100.0/24', protocol: 'tcp', ports: [8080, '9000-9010', 8080] }, { cidr: '203.0.113.7' }],
    deny: [{ domain: 'evil.example' }],
  });
  assert.deepEqual(p.allow, [
    { domain: 'registry.npmjs.org', protocol: 'tcp', ports: ['80', '443'] },
    { cidr: '198.51.100.0/24', protocol: 'tcp', ports: ['8080', '9000-9010'] },
    { cidr: '203.0.113.7/32', protocol: 'any', ports: [] },
  ]);
  assert.deepEqual(p.deny, [{ domain: 'evil.example', protocol: 'any', ports: [] }]);
});

test('bad input is refused with the field named', () => {
  assert.equal(fieldOf(() => resolvePolicy({ preset: 'open' as never })), 'network.preset');
  assert.equal(fieldOf(() => resolvePolicy({ allow: [{ cidr: '10.1.0.0/16' }] })), 'network.allow[0].cidr');
  assert.equal(fieldOf(() => resolvePolicy({ allow: [{ cidr: '169.254.169.254/32' }] })), 'network.allow[0].cidr');
  assert.equal(fieldOf(() => resolvePolicy({ allow: [{ cidr: '198.51.100.1/24' }] })), 'network.allow[0].cidr');
  assert.equal(fieldOf(() => resolvePolicy({ allow: [{ cidr: '198.51.100.0/24', domain: 'a.b' }] })), 'network.allow[0]');
  assert.equal(fieldOf(() => resolvePolicy({ deny: [{ domain: 'not a domain' }] })), 'network.deny[0].domain');
  assert.equal(fieldOf(() => resolvePolicy({ deny: [{ cidr: '1.2.3.4', protocol: 'icmp', ports: [1] }] })), 'network.deny[0].ports');
  assert.equal(fieldOf(() => resolvePolicy({ allow: [{ cidr: '1.2.3.4', protocol: 'tcp', ports: ['70000'] }] })), 'network.allow[0].ports');
  assert.equal(fieldOf(() => resolvePolicy({ preset: 'none', allow: [{ cidr: '1.2.3.4' }] })), 'network.allow');
  assert.equal(fieldOf(() => resolvePolicy({ allowPrivate: ['169.254.0.0/16'] })), 'network.allowPrivate');
});

test('a private range is allowed only inside an allowPrivate range', () => {
  const p = resolvePolicy({ allowPrivate: ['10.20.0.0/16'], allow: [{ cidr: '10.20.30.0/24', protocol: 'tcp', ports: [5432] }] });
  assert.equal(p.allow[0]?.cidr, '10.20.30.0/24');
  assert.equal(fieldOf(() => resolvePolicy({ allowPrivate: ['10.20.0.0/16'], allow: [{ cidr: '10.0.0.0/8' }] })), 'network.allow[0].cidr');
});
