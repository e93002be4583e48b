// hello and sys.configure: who the agent is, and making a restored clone unique (clock,
// entropy, hostname, machine-id). health is in health.ts.

import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import { AgentError, PROTOCOL_VERSION } from '@kiln/protocol';
import type { OpHandler } from './context.js';
import { guestCtl, type GuestCtl } from '../guestctl.js';

const run = promisify(execFile);
const fallbackBootId = randomUUID();

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The kernel's boot id, read once: it is fixed for the life of this agent (a restored clone
 * keeps its template's), and the hello after a restore is on the critical path of every create,
 * where each read through the thread pool is code TCG translates anew.
 */
let bootIdOnce: Promise<string> | null = null;

export const hello: OpHandler<'hello'> = async (ctx, args) => {
  if (args.protocolVersion !== PROTOCOL_VERSION) {
    throw new AgentError('VERSION_MISMATCH', `host speaks protocol ${args.protocolVersion}, agent ${PROTOCOL_VERSION}`);
  }
  if (args.windowBytes !== undefined) ctx.session.windowBytes = args.windowBytes;
  bootIdOnce ??= readText('/proc/sys/kernel/random/boot_id').then((t) => t?.trim() || fallbackBootId);
  const bootId = await bootIdOnce;
  return {
    protocolVersion: PROTOCOL_VERSION,
    agentVersion: ctx.session.config.agentVersion,
    bootId: bootId.slice(0, 64),
    hostname: os.hostname().slice(0, 255),
    pid: process.pid,
  };
};

/**
 * Sets the wall clock to the host's time, advanced by how long the request waited here. The
 * first call after a snapshot restore is slow (TCG translates the code it runs anew), so a slow
 * pass is followed by another, whose error is bounded by its own (warm, faster) round trip.
 * With the resident helper a pass is one clock_settime; without it, a `date -u -s @SECS` spawn.
 */
async function setClock(ctl: GuestCtl | null, epochMs: number, receivedAt: number): Promise<void> {
  let last: unknown;
  for (let pass = 0; pass < 3; pass++) {
    const target = epochMs + (performance.now() - receivedAt);
    const t0 = performance.now();
    try {
      if (ctl) {
        const ns = BigInt(Math.round(target * 1e6));
        await ctl.call(`clock ${ns / 1_000_000_000n} ${ns % 1_000_000_000n}`);
      } else {
        await run('date', ['-u', '-s', `@${(target / 1000).toFixed(3)}`], { timeout: 5000 });
      }
      last = undefined;
    } catch (err) {
      last = err;
      continue;
    }
    if (performance.now() - t0 < (ctl ? 5 : 30)) break;
  }
  if (last === undefined) return;
  if (last instanceof AgentError) throw last;
  const stderr = String((last as { stderr?: unknown }).stderr ?? (last as Error).message).trim();
  throw new AgentError('INTERNAL', `setting the clock failed: ${stderr}`);
}

export const configure: OpHandler<'sys.configure'> = async (ctx, args) => {
  const receivedAt = performance.now();
  const root = ctx.session.config.sysRoot;
  // The clock first: everything after it would only add to its error.
  const ctl = guestCtl(ctx.session.config);
  if (args.timeEpochMs !== undefined) await setClock(ctl, args.timeEpochMs, receivedAt);
  if (args.entropyHex !== undefined) {
    const bytes = Buffer.from(args.entropyHex, 'hex');
    if (bytes.length > 4096) throw new AgentError('INVALID_ARGUMENT', 'entropyHex: at most 4096 bytes');
    // The helper mixes it in and credits it (RNDADDENTROPY); a plain write only mixes it in.
    if (ctl && bytes.length > 0) await ctl.call(`entropy ${bytes.toString('hex')}`);
    else await appendFile(`${root}/dev/urandom`, bytes);
  }
  if (args.machineId !== undefined) await writeFile(`${root}/etc/machine-id`, `${args.machineId}\n`);
  if (args.hostname !== undefined) {
    await writeFile(`${root}/proc/sys/kernel/hostname`, args.hostname);
    await writeFile(`${root}/etc/hostname`, `${args.hostname}\n`);
    await writeFile(`${root}/etc/hosts`, `127.0.0.1\tlocalhost\n127.0.1.1\t${args.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  }
  return {};
};
