// A create naming a template takes its shape, and (a template built from an image) its ENV.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTemplateShape } from './spec.js';

const shape = { memoryMiB: 1024, vcpus: 2, diskGiB: 10 };

test("a template's image ENV is the base of the sandbox's env; the create's own env wins", async () => {
  const templates = { shapeOf: async (name: string) => (name === 'web' ? { ...shape, env: { PATH: '/bin', GREETING: 'hi', MODE: 'image' } } : null) };
  const input = await withTemplateShape({ env: { MODE: 'mine' } }, 'web', templates);
  assert.deepEqual(input.env, { PATH: '/bin', GREETING: 'hi', MODE: 'mine' });
  assert.equal(input.memoryMiB, 1024);
  // A template without an image config leaves env as given.
  const plain = await withTemplateShape({ env: { A: '1' } }, 'web', { shapeOf: async () => shape });
  assert.deepEqual(plain.env, { A: '1' });
  await assert.rejects(withTemplateShape({}, 'nope', templates), { code: 'TEMPLATE_NOT_FOUND' });
});
