import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registryAccess } from './authz.js';
import { renderRegistryConfig } from './config.js';

test('registry config: loopback only, storage under the state dir, pull-through cache when asked', () => {
  const plain = renderRegistryConfig({ dataDir: '/var/lib/kiln/registry/data', port: 41234 });
  assert.match(plain, /addr: "127\.0\.0\.1:41234"/);
  assert.match(plain, /rootdirectory: "\/var\/lib\/kiln\/registry\/data"/);
  assert.doesNotMatch(plain, /proxy:/);
  const cache = renderRegistryConfig({ dataDir: '/d', port: 1, remoteUrl: 'https://registry-1.docker.io', remoteUsername: 'u', remotePassword: 'p"w' });
  assert.match(cache, /\nproxy:\n {2}remoteurl: "https:\/\/registry-1\.docker\.io"\n {2}username: "u"\n {2}password: "p\\"w"\n$/);
});

test('registry access: a tenant has its namespace and reads the shared one; the admin has all', () => {
  const ok = (t: string | null, m: string, u: string) => registryAccess(t, m, u).ok;
  assert.ok(ok('acme', 'GET', '/v2/'));
  assert.ok(ok('acme', 'GET', '/v2/acme/app/manifests/v1'));
  assert.ok(ok('acme', 'HEAD', '/v2/acme/app/blobs/sha256:00'));
  assert.ok(ok('acme', 'POST', '/v2/acme/app/blobs/uploads/'));
  assert.ok(ok('acme', 'PATCH', '/v2/acme/app/blobs/uploads/1234-uuid'));
  assert.ok(ok('acme', 'PUT', '/v2/acme/app/manifests/v1'));
  assert.ok(ok('acme', 'GET', '/v2/library/busybox/manifests/latest'));
  assert.ok(!ok('acme', 'PUT', '/v2/library/busybox/manifests/latest'), 'shared is read-only for tenants');
  assert.ok(!ok('acme', 'GET', '/v2/other/app/manifests/v1'), "another tenant's images");
  assert.ok(!ok('acme', 'GET', '/v2/other/app/blobs/sha256:00'));
  assert.ok(!ok('acme', 'PUT', '/v2/acme/manifests/v1'), 'a repository directly named like the tenant is not its namespace');
  assert.ok(!ok('acme', 'POST', '/v2/acme/app/blobs/uploads/?mount=sha256:00&from=other/app'), 'no blob mount from a repository it cannot read');
  assert.ok(!ok('acme', 'GET', '/v2/_catalog'));
  assert.ok(!ok('acme', 'GET', '/v2/acme/../other/app/manifests/v1'));
  assert.ok(ok(null, 'PUT', '/v2/other/app/manifests/v1'));
  assert.ok(ok(null, 'PUT', '/v2/library/busybox/manifests/latest'));
});

test('sandbox network: registry.kiln.internal is the gateway; its port is open unless the policy is none', async () => {
  const { renderPolicy } = await import('../network/nft-sandbox.js');
  const { renderResolverConf } = await import('../network/resolver.js');
  const { resolvePolicy } = await import('../network/policy.js');
  const { netNames } = await import('../network/names.js');
  const names = netNames('sb-0123456789abcdef0123456789abcdef');
  const rule = /add rule inet \S+ resolver meta l4proto tcp th dport 443 jump accept_flow/;
  assert.match(renderPolicy({ names, policy: resolvePolicy(undefined) }), rule);
  assert.match(renderPolicy({ names, policy: resolvePolicy({ preset: 'locked' }) }), rule);
  assert.doesNotMatch(renderPolicy({ names, policy: resolvePolicy({ preset: 'none' }) }), rule);
  const conf = renderResolverConf({ names, runDir: '/r', gateway: '10.210.0.1', upstream: [], policy: resolvePolicy(undefined) });
  assert.match(conf, /^address=\/registry\.kiln\.internal\/10\.210\.0\.1$/m);
});
