import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPolicyPatch } from './policy-patch.js';
import { resolvePolicy } from './policy.js';

const refused = (fn: () => unknown, field: RegExp): void => {
  assert.throws(fn, (err: { code?: string; details?: { field?: string } }) => {
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.details?.field ?? '', field);
    return true;
  });
};

// The README's example: --net locked --allow 198.51.100.7:tcp:443, then --deny 203.0.113.7.
const locked = resolvePolicy({ preset: 'locked', allow: [{ cidr: '198.51.100.7', protocol: 'tcp', ports: [443] }] });

test('a deny added by a patch keeps the preset and every allow rule (issue 11, defect 4)', () => {
  const after = applyPolicyPatch(locked, { deny: { add: [{ cidr: '203.0.113.7' }] } });
  assert.deepEqual(after, {
    preset: 'locked',
    allow: [{ cidr: '198.51.100.7/32', protocol: 'tcp', ports: ['443'] }],
    deny: [{ cidr: '203.0.113.7/32', protocol: 'any', ports: [] }],
    allowPrivate: [],
  });
  assert.equal(locked.deny.length, 0, 'the current policy is not modified');
});

test('preset changes only when named; adding a rule twice is a no-op', () => {
  const p = applyPolicyPatch(locked, { preset: 'default', allow: { add: [{ cidr: '198.51.100.7/32', protocol: 'tcp', ports: ['443'] }] } });
  assert.equal(p.preset, 'default');
  assert.equal(p.allow.length, 1);
});

test('remove: a target alone removes all its rules; with protocol/ports only the exact rule', () => {
  const base = resolvePolicy({
    preset: 'locked',
    allow: [{ cidr: '198.51.100.7', protocol: 'tcp', ports: [443] }, { cidr: '198.51.100.7', protocol: 'udp', ports: [53] }, { domain: 'example.org' }],
  });
  assert.deepEqual(applyPolicyPatch(base, { allow: { remove: [{ cidr: '198.51.100.7' }] } }).allow, [{ domain: 'example.org', protocol: 'tcp', ports: ['80', '443'] }]);
  const exact = applyPolicyPatch(base, { allow: { remove: [{ cidr: '198.51.100.7/32', protocol: 'udp', ports: [53] }] } });
  assert.deepEqual(exact.allow.map((r) => r.protocol), ['tcp', 'tcp']);
  // an allowed domain's default ports (80, 443) match a reference with the same defaults
  assert.equal(applyPolicyPatch(base, { allow: { remove: [{ domain: 'Example.org', protocol: 'tcp' }] } }).allow.length, 2);
});

test('strict: an empty patch, removing what is absent, adding and removing the same rule are refused', () => {
  refused(() => applyPolicyPatch(locked, {}), /^patch$/);
  refused(() => applyPolicyPatch(locked, { allow: { add: [], remove: [] } }), /^patch$/);
  refused(() => applyPolicyPatch(locked, { deny: { remove: [{ cidr: '203.0.113.7' }] } }), /^patch\.deny\.remove\[0\]$/);
  refused(() => applyPolicyPatch(locked, { allow: { remove: [{ cidr: '198.51.100.7', protocol: 'udp' }] } }), /^patch\.allow\.remove\[0\]$/);
  refused(() => applyPolicyPatch(locked, { deny: { add: [{ cidr: '203.0.113.7' }], remove: [{ cidr: '203.0.113.7' }] } }), /^patch\.deny\.remove\[0\]$/);
  refused(() => applyPolicyPatch(locked, { allowPrivate: { remove: ['10.0.0.0/8'] } }), /^patch\.allowPrivate\.remove\[0\]$/);
});

test('added rules are validated and named by their place in the patch', () => {
  refused(() => applyPolicyPatch(locked, { allow: { add: [{ cidr: '198.51.100.8' }, { cidr: '10.1.0.0/16' }] } }), /^patch\.allow\.add\[1\]\.cidr$/);
  refused(() => applyPolicyPatch(locked, { deny: { add: [{ domain: 'not a domain' }] } }), /^patch\.deny\.add\[0\]\.domain$/);
  // a private range and the rule that needs it in one patch
  const p = applyPolicyPatch(locked, { allowPrivate: { add: ['10.1.0.0/16'] }, allow: { add: [{ cidr: '10.1.2.0/24', protocol: 'tcp', ports: [5432] }] } });
  assert.deepEqual(p.allowPrivate, ['10.1.0.0/16']);
  // taking the range away while a rule still needs it is refused by the whole-policy check
  refused(() => applyPolicyPatch(p, { allowPrivate: { remove: ['10.1.0.0/16'] } }), /^policy\.allow\[1\]\.cidr$/);
});

test('the result is checked as a whole policy: preset none with allow rules is refused', () => {
  refused(() => applyPolicyPatch(locked, { preset: 'none' }), /^policy\.allow$/);
  const none = applyPolicyPatch(locked, { preset: 'none', allow: { remove: [{ cidr: '198.51.100.7' }] } });
  assert.deepEqual(none, { preset: 'none', allow: [], deny: [], allowPrivate: [] });
});
