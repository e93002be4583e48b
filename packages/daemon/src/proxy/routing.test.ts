import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeSandboxId, parseRoute, portUrl } from './routing.js';

const ID = `sb-${'ab12'.repeat(8)}`;
const HEX = ID.slice(3);

test('sandbox ids: kiln form and bare E2B hex both give the kiln id; anything else is refused', () => {
  assert.equal(normalizeSandboxId(ID), ID);
  assert.equal(normalizeSandboxId(HEX), ID);
  assert.equal(normalizeSandboxId(HEX.toUpperCase()), ID);
  for (const bad of ['', 'sb-', 'sb-xyz', '../etc', `${HEX}-x`, 'a'.repeat(65)]) assert.equal(normalizeSandboxId(bad), null, bad);
});

test('host-name routes: <port>-<id>.<domain>, with or without the listener port, either id form', () => {
  assert.deepEqual(parseRoute({ url: '/a?b=1', headers: { host: `3000-${ID}.localhost:8443` } }, 'localhost'), { sandboxId: ID, port: 3000, path: '/a?b=1', via: 'host' });
  assert.deepEqual(parseRoute({ url: '/', headers: { host: `8080-${HEX}.preview.example.com` } }, 'preview.example.com'), { sandboxId: ID, port: 8080, path: '/', via: 'host' });
  assert.equal(parseRoute({ url: '/', headers: { host: `3000-${ID}.other.com` } }, 'localhost'), null);
  assert.equal(parseRoute({ url: '/', headers: { host: `70000-${ID}.localhost` } }, 'localhost'), null);
  assert.equal(parseRoute({ url: '/', headers: { host: `x.3000-${ID}.localhost` } }, 'localhost'), null);
});

test('header routes win over the host, in kiln and E2B spelling; a half-given header route is no route', () => {
  const h = { host: `1-${ID}.localhost`, 'kiln-sandbox-id': HEX, 'kiln-sandbox-port': '5000' };
  assert.deepEqual(parseRoute({ url: '/x', headers: h }, 'localhost'), { sandboxId: ID, port: 5000, path: '/x', via: 'header' });
  assert.deepEqual(parseRoute({ url: '/', headers: { 'e2b-sandbox-id': HEX, 'e2b-sandbox-port': '49983' } }, 'localhost')?.port, 49983);
  assert.equal(parseRoute({ url: '/', headers: { 'kiln-sandbox-id': ID } }, 'localhost'), null);
});

test('path routes: the prefix is stripped, the query kept', () => {
  assert.deepEqual(parseRoute({ url: `/sandboxes/${ID}/ports/3000/api/x?q=1`, headers: { host: 'kiln.example' } }, 'localhost'), { sandboxId: ID, port: 3000, path: '/api/x?q=1', via: 'path' });
  assert.equal(parseRoute({ url: `/sandboxes/${HEX}/ports/3000`, headers: {} }, 'localhost')?.path, '/');
  assert.equal(parseRoute({ url: `/sandboxes/${HEX}/ports/3000?kiln_sig=x`, headers: {} }, 'localhost')?.path, '/?kiln_sig=x');
  assert.equal(parseRoute({ url: `/sandboxes/${HEX}/ports/0/`, headers: {} }, 'localhost'), null);
  assert.equal(parseRoute({ url: '/', headers: { host: 'localhost' } }, 'localhost'), null);
});

test('port URLs leave out the default port of the scheme', () => {
  assert.equal(portUrl({ scheme: 'http', domain: 'localhost', port: 8088 }, ID, 3000), `http://3000-${ID}.localhost:8088/`);
  assert.equal(portUrl({ scheme: 'https', domain: 'p.example', port: 443 }, ID, 3000), `https://3000-${ID}.p.example/`);
});
