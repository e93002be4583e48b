import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KilnError } from '../errors.js';
import { ERROR_CODES } from '@kiln/contract';
import { fakeHarness } from '../testing/harness.js';

type ErrorJson = { error: { code: string; message: string } };

test('framework errors come back as kiln codes in the {error:{code,message}} shape', async () => {
  const h = await fakeHarness();
  try {
    const cases: Array<[string, { headers: Record<string, string>; payload: string | Buffer }, number, string]> = [
      ['body too large', { headers: { 'content-type': 'application/json' }, payload: `{"labels":{"a":"${'x'.repeat(1024 * 1024 + 10)}"}}` }, 413, 'BODY_TOO_LARGE'],
      ['wrong media type', { headers: { 'content-type': 'application/xml' }, payload: '<a/>' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['malformed JSON', { headers: { 'content-type': 'application/json' }, payload: '{"memoryMiB": ' }, 400, 'MALFORMED_JSON'],
      ['empty JSON body', { headers: { 'content-type': 'application/json' }, payload: '' }, 400, 'MALFORMED_JSON'],
    ];
    for (const [what, req, status, code] of cases) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/sandboxes', ...req });
      assert.equal(res.statusCode, status, `${what}: ${res.body.slice(0, 200)}`);
      const j = res.json() as ErrorJson;
      assert.equal(j.error.code, code, what);
      assert.equal(typeof j.error.message, 'string');
      assert.doesNotMatch(j.error.message, /FST_ERR/, what);
    }
    assert.equal(h.store.list().length, 0);
  } finally {
    await h.close();
  }
});

test('a 500 never echoes host detail: the message is generic and names the request id, the log has the rest', async () => {
  const h = await fakeHarness();
  const secret = "ip netns add kiln-1234: RTNETLINK answers: File exists (argv: ['ip','netns','add'])";
  try {
    h.app.get('/test/throw-plain', async () => {
      throw new Error(secret);
    });
    h.app.get('/test/throw-kiln', async () => {
      throw new KilnError('NETWORK_SETUP_FAILED', secret);
    });
    h.app.get('/test/throw-409', async () => {
      throw new KilnError('TEMPLATE_EXISTS', 'a template is already named t1');
    });
    for (const [url, code] of [['/test/throw-plain', 'INTERNAL'], ['/test/throw-kiln', 'NETWORK_SETUP_FAILED']] as const) {
      const res = await h.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 500);
      const j = res.json() as ErrorJson;
      assert.equal(j.error.code, code);
      assert.doesNotMatch(j.error.message, /RTNETLINK|netns|argv/);
      assert.match(j.error.message, /request req-[0-9a-f]{12}/);
    }
    const ok = await h.app.inject({ method: 'GET', url: '/test/throw-409' });
    assert.equal(ok.statusCode, 409);
    assert.deepEqual(ok.json(), { error: { code: 'TEMPLATE_EXISTS', message: 'a template is already named t1' } });
  } finally {
    await h.close();
  }
});

test('/openapi.json enumerates the registry: an Error schema with the code enum, a table and x-kiln-error-codes', async () => {
  const h = await fakeHarness();
  try {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      info: { description: string };
      components: { schemas: { Error: { properties: { error: { properties: { code: { enum: string[] } } } } } } };
      'x-kiln-error-codes': Record<string, { status: number; meaning: string }>;
      paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
    };
    const codes = Object.keys(ERROR_CODES);
    assert.deepEqual(doc.components.schemas.Error.properties.error.properties.code.enum, codes);
    assert.deepEqual(doc['x-kiln-error-codes'], ERROR_CODES);
    for (const code of codes) assert.match(doc.info.description, new RegExp(`\\| ${code} \\| ${ERROR_CODES[code as keyof typeof ERROR_CODES].status} \\|`));
    const inspect404 = doc.paths['/v1/sandboxes/{id}']?.get?.responses?.['4XX']?.content?.['application/json']?.schema as { properties: { error: { properties: { code: { enum: string[] } } } } };
    assert.deepEqual(inspect404.properties.error.properties.code.enum, codes);
  } finally {
    await h.close();
  }
});
