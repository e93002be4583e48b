import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progress } from './progress.js';

const stream = (isTTY: boolean) => {
  const out: string[] = [];
  return { out, s: { isTTY, write: (x: string) => out.push(x) } as unknown as NodeJS.WriteStream };
};

test('progress: rewritten in place on a terminal, cleared at the end; nothing at all when piped', () => {
  const tty = stream(true);
  const p = progress('creating sb-1', tty.s);
  p.step('start-vm');
  p.done();
  assert.match(tty.out.join(''), /\r\x1b\[Kcreating sb-1: start-vm \(\d+\.\d s\)/);
  assert.equal(tty.out.at(-1), '\r\x1b[K');
  const piped = stream(false);
  const q = progress('creating sb-1', piped.s);
  q.step('start-vm');
  q.done();
  assert.deepEqual(piped.out, []);
});
