/**
 * Creation as an ordered list of named steps, each with an undo (after firecracker-go-sdk's
 * handler lists). A failure at any step undoes every step that ran, newest first, including
 * the failing step's own undo (undos must therefore be idempotent), and reports the step.
 */
import { KilnError, toKilnError } from '../errors.js';

export interface Step<C> {
  name: string;
  run(ctx: C, signal: AbortSignal): Promise<void>;
  undo?(ctx: C): Promise<void>;
}

export interface StepHooks {
  onStepStart?(name: string): void;
  onStepDone?(name: string, durationMs: number): void;
  onUndoError?(name: string, err: unknown): void;
}

export class StepFailedError extends KilnError {
  readonly step: string;
  constructor(step: string, cause: unknown) {
    const inner = toKilnError(cause);
    super(inner.code, `step ${step} failed: ${inner.message}`, { status: inner.status, cause, details: { step } });
    this.step = step;
  }
}

/** Test hook: `KILN_CRASH_AFTER_STEP=<name>` SIGKILLs the daemon right after that step. */
function maybeCrash(step: string): void {
  if (process.env.KILN_CRASH_AFTER_STEP === step) process.kill(process.pid, 'SIGKILL');
}

export async function runSteps<C>(steps: ReadonlyArray<Step<C>>, ctx: C, signal: AbortSignal, hooks: StepHooks = {}): Promise<void> {
  const started: Array<Step<C>> = [];
  try {
    for (const step of steps) {
      if (signal.aborted) throw new KilnError('CANCELLED', 'creation cancelled (sandbox destroyed while creating)', { status: 409 });
      started.push(step);
      hooks.onStepStart?.(step.name);
      const t0 = performance.now();
      try {
        await step.run(ctx, signal);
      } catch (err) {
        throw new StepFailedError(step.name, err);
      }
      hooks.onStepDone?.(step.name, Math.round(performance.now() - t0));
      maybeCrash(step.name);
    }
  } catch (err) {
    await undoSteps(started, ctx, hooks);
    throw err instanceof StepFailedError ? err : new StepFailedError(started.at(-1)?.name ?? 'start', err);
  }
}

export async function undoSteps<C>(steps: ReadonlyArray<Step<C>>, ctx: C, hooks: StepHooks = {}): Promise<void> {
  for (const step of [...steps].reverse()) {
    if (!step.undo) continue;
    try {
      await step.undo(ctx);
    } catch (err) {
      hooks.onUndoError?.(step.name, err);
    }
  }
}
