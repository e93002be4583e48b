import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSteps, StepFailedError, type Step } from './steps.js';

test('a failing step undoes every step that ran, newest first, and names the step', async () => {
  const log: string[] = [];
  const mk = (name: string, fail = false): Step<null> => ({
    name,
    run: async () => {
      log.push(`run ${name}`);
      if (fail) throw new Error(`boom in ${name}`);
    },
    undo: async () => {
      log.push(`undo ${name}`);
    },
  });
  await assert.rejects(
    runSteps([mk('a'), mk('b'), mk('c', true), mk('d')], null, new AbortController().signal),
    (err: unknown) => err instanceof StepFailedError && err.step === 'c' && /boom in c/.test(err.message),
  );
  assert.deepEqual(log, ['run a', 'run b', 'run c', 'undo c', 'undo b', 'undo a']);
});

test('an undo that throws does not stop the other undos', async () => {
  const log: string[] = [];
  const steps: Array<Step<null>> = [
    { name: 'a', run: async () => void log.push('a'), undo: async () => void log.push('undo a') },
    { name: 'b', run: async () => void log.push('b'), undo: async () => { throw new Error('undo b broke'); } },
    { name: 'c', run: async () => { throw new Error('c'); } },
  ];
  const undoErrors: string[] = [];
  await assert.rejects(runSteps(steps, null, new AbortController().signal, { onUndoError: (n) => undoErrors.push(n) }));
  assert.deepEqual(log, ['a', 'b', 'undo a']);
  assert.deepEqual(undoErrors, ['b']);
});

test('an aborted signal stops before the next step and undoes', async () => {
  const ac = new AbortController();
  const log: string[] = [];
  const steps: Array<Step<null>> = [
    { name: 'a', run: async () => { log.push('a'); ac.abort(); }, undo: async () => void log.push('undo a') },
    { name: 'b', run: async () => void log.push('b') },
  ];
  await assert.rejects(runSteps(steps, null, ac.signal), /cancelled/);
  assert.deepEqual(log, ['a', 'undo a']);
});
