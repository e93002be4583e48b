import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { netNames } from './names.js';
import { resolvePolicy } from './policy.js';
import { capResolverLog, readResolverLog, renderResolverConf, resolverPaths } from './resolver.js';

test('resolver config: listen on the gateway only, upstreams, nftset per allowed-domain group, NXDOMAIN for denied', () => {
  const conf = renderResolverConf({
    names: netNames('sb-0123456789ab'),
    runDir: '/x/sb-0123456789ab',
    gateway: '10.210.0.1',
    upstream: ['198.51.100.53'],
    policy: resolvePolicy({ allow: [{ domain: 'a.example' }, { domain: 'b.example' }, { domain: 'c.example', protocol: 'udp', ports: [5000] }], deny: [{ domain: 'evil.example' }] }),
  });
  assert.match(conf, /^listen-address=10\.210\.0\.1$/m);
  assert.match(conf, /^bind-interfaces$/m);
  assert.match(conf, /^no-resolv$/m);
  assert.match(conf, /^server=198\.51\.100\.53$/m);
  assert.match(conf, /^log-facility=\/x\/sb-0123456789ab\/dns\.log$/m);
  assert.match(conf, /^nftset=\/a\.example\/b\.example\/4#inet#kiln_0123456789ab#adom_[0-9a-f]{10}$/m);
  assert.match(conf, /^nftset=\/c\.example\/4#inet#kiln_0123456789ab#adom_[0-9a-f]{10}$/m);
  assert.match(conf, /^address=\/evil\.example\/$/m);
});

test('the query log is capped: rotated once past the limit, read across the rotation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-dnslog-'));
  try {
    const p = resolverPaths(dir);
    writeFileSync(p.log, 'a'.repeat(50));
    assert.equal(await capResolverLog(dir, 100), false);
    writeFileSync(p.log, 'b'.repeat(150));
    assert.equal(await capResolverLog(dir, 100), true);
    assert.ok(!existsSync(p.log) && existsSync(p.oldLog));
    writeFileSync(p.log, 'c'.repeat(10));
    assert.equal(await readResolverLog(dir, 20), 'b'.repeat(10) + 'c'.repeat(10));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
