import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daemonConfigFromOptions } from '../daemon-options.js';
import { checkProxy } from '../doctor/checks.js';

test('proxy options: flags over environment; TLS defaults to the API listener’s; bad values refused', () => {
  const c = daemonConfigFromOptions({ proxyListen: '127.0.0.1:8088', tlsCert: '/c', tlsKey: '/k', listen: '0.0.0.0:7443' }, { KILN_PROXY_DOMAIN: 'Preview.Example.com' });
  assert.equal(c.proxyListen, '127.0.0.1:8088');
  assert.equal(c.proxyDomain, 'preview.example.com');
  assert.deepEqual([c.proxyTlsCert, c.proxyTlsKey], ['/c', '/k']);
  const env = daemonConfigFromOptions({}, { KILN_PROXY_LISTEN: '[::1]:0', KILN_PROXY_PUBLIC_URL: 'https://p.example/' });
  assert.equal(env.proxyListen, '[::1]:0');
  assert.equal(env.proxyPublicUrl, 'https://p.example');
  assert.equal(daemonConfigFromOptions({}, {}).proxyListen, undefined);
  assert.throws(() => daemonConfigFromOptions({ proxyListen: ':1', proxyTlsCert: '/c' }, {}), /both --proxy-tls-cert and --proxy-tls-key/);
  assert.throws(() => daemonConfigFromOptions({ proxyDomain: 'bad domain' }, {}), /--proxy-domain/);
  assert.throws(() => daemonConfigFromOptions({ proxyPublicUrl: 'ftp://x/y' }, {}), /--proxy-public-url/);
});

test('kilnd doctor names the proxy URL pattern, or that it is off', () => {
  assert.match(checkProxy({}).detail, /^off/);
  assert.equal(checkProxy({ KILN_PROXY_LISTEN: '127.0.0.1:8088' }).detail, 'http://{port}-{sandboxId}.localhost:8088/ (listening on 127.0.0.1:8088)');
  assert.match(checkProxy({ KILN_PROXY_LISTEN: '127.0.0.1:8088', KILN_PROXY_PUBLIC_URL: 'https://preview.example.com' }).detail, /^https:\/\/\{port\}-\{sandboxId\}\.preview\.example\.com\/ /);
});
