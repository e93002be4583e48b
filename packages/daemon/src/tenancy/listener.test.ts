import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { clientAddress, parseListen } from './listener.js';
import { daemonConfigFromOptions } from '../daemon-options.js';

const req = (peer: string, xff?: string): IncomingMessage => ({ socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;

test('client address: X-Forwarded-For is believed only from a trusted proxy, right to left past trusted hops', () => {
  const none = new Set<string>();
  const proxies = new Set(['10.0.0.1', '10.0.0.2']);
  assert.equal(clientAddress(req('203.0.113.9', '1.2.3.4'), none), '203.0.113.9', 'an untrusted peer cannot choose its address');
  assert.equal(clientAddress(req('::ffff:10.0.0.1', '1.2.3.4, 198.51.100.7'), proxies), '198.51.100.7');
  assert.equal(clientAddress(req('10.0.0.1', '198.51.100.7, 10.0.0.2'), proxies), '198.51.100.7', 'a chain of trusted proxies is skipped');
  assert.equal(clientAddress(req('10.0.0.1'), proxies), '10.0.0.1', 'no header: the proxy itself');
});

test('--listen and TLS options: HOST:PORT (IPv6 in brackets), both or neither of cert and key, flags over env', () => {
  assert.deepEqual(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseListen('[::1]:7443'), { host: '::1', port: 7443 });
  for (const bad of ['7443', 'host:', ':80', 'h:70000', '::1:80']) assert.throws(() => parseListen(bad), /HOST:PORT/, bad);
  assert.throws(() => daemonConfigFromOptions({ listen: '127.0.0.1:1', tlsCert: '/c' }, {}), /both/);
  assert.throws(() => daemonConfigFromOptions({ tlsCert: '/c', tlsKey: '/k' }, {}), /need --listen/);
  const c = daemonConfigFromOptions({ listen: '0.0.0.0:7443' }, { KILN_LISTEN: '127.0.0.1:1', KILN_TLS_CERT: '/c', KILN_TLS_KEY: '/k', KILN_TRUSTED_PROXIES: '10.0.0.1, 10.0.0.2' });
  assert.equal(c.listen, '0.0.0.0:7443');
  assert.equal(c.tlsCert, '/c');
  assert.deepEqual(c.trustedProxies, ['10.0.0.1', '10.0.0.2']);
  assert.equal(daemonConfigFromOptions({}, {}).listen, undefined, 'no TCP listener unless asked');
});
