/**
 * Idle sleep and wake on traffic with real VMs (issue 13): a sandbox created with
 * `kiln create --auto-pause 3s` pauses after idling (its VMM stops using CPU, its memory is
 * kept), an exec wakes it and gets the right answer (a file and a background process from
 * before are still there, the guest clock is right), then a file call and a process call wake it
 * in turn, `kiln inspect` and /metrics show running and paused time, and a sandbox the user
 * paused is not woken (INVALID_STATE, as before).
 */
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { waitFor } from './lifecycle-leftovers.js';

const skip = integrationSkipReason();

/** user+system CPU seconds of a process (/proc/PID/stat). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

async function text(res: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('auto-pause: idle sleep and wake on exec, file and process calls', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('autopause');
  after(async () => fx.close());

  fx.test('a sandbox with --auto-pause 3s pauses when idle, and guest calls wake it', async () => {
    // The resource sampler asks every guest for its health twice a second: a sample is not
    // activity (it used to count as an exec, and kept idle sandboxes from ever pausing).
    await fx.start({ KILN_STATS_INTERVAL_MS: '500', KILN_STATS_IDLE_GUEST_INTERVAL_MS: '500' });
    const created = await fx.cli(['create', '--auto-pause', '3s']);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.toString().trim().split('\n').at(-1) as string;
    const pausedAuto = async () => {
      await waitFor('auto-pause', async () => (await fx.client.get(id)).pausedBy === 'auto', 120_000);
    };

    // Something in memory and on disk to find again after the wake.
    const prep = await fx.sh(id, 'echo kept > /tmp/kept && setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo $!');
    assert.equal(prep.code, 0, prep.err);
    const bgPid = prep.out.trim();

    await pausedAuto();
    const paused = await fx.client.get(id);
    assert.equal(paused.state, 'paused');
    assert.equal(paused.autoPauseMs, 3000);
    const ev = await fx.client.events(id);
    assert.ok(ev.some((e) => e.type === 'auto-paused'), 'auto-paused event');
    // Paused: the VMM uses (almost) no CPU; its memory is kept.
    const pid = paused.vm?.pid as number;
    const cpu0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 1500));
    const used = cpuSeconds(pid) - cpu0;
    assert.ok(used < 0.2, `a paused VMM used ${used} s of CPU in 1.5 s`);

    // An exec wakes it and gets the right answer; what was there is still there.
    const t0 = Date.now();
    const r = await fx.sh(id, `uname -s; cat /tmp/kept; kill -0 ${bgPid} && echo alive; date +%s`);
    const wakeExecMs = Date.now() - t0;
    assert.equal(r.code, 0, r.err);
    const [uname, kept, alive, epoch] = r.out.trim().split('\n');
    assert.equal(uname, 'Linux');
    assert.equal(kept, 'kept');
    assert.equal(alive, 'alive', 'the background process survived the pause');
    assert.ok(Math.abs(Number(epoch) - Date.now() / 1000) < 3, `the guest clock was set again on wake (guest ${epoch}, host ${Date.now() / 1000})`);
    const woke = (await fx.client.events(id)).filter((e) => e.type === 'woke');
    assert.equal(woke.length, 1);
    process.stderr.write(`# wake: exec on an auto-paused sandbox answered in ${wakeExecMs} ms (resume ${JSON.stringify(woke[0]?.data)})\n`);

    // kiln inspect: paused time and who paused it.
    const insp = await fx.cli(['inspect', id]);
    const view = JSON.parse(insp.stdout.toString()) as { state: string; pausedBy: string | null; pausedSeconds: number; runningSeconds: number; autoPauseMs: number };
    assert.equal(view.state, 'running');
    assert.equal(view.pausedBy, null);
    assert.ok(view.pausedSeconds >= 1.5, `inspect shows the paused time (${view.pausedSeconds} s)`);
    assert.ok(view.runningSeconds > 0);

    // A file call wakes it.
    await pausedAuto();
    const st = await fx.client.stat(id, '/tmp/kept');
    assert.equal(st.type, 'file');
    assert.equal((await fx.client.get(id)).state, 'running');

    // A process call wakes it (and `kiln ls` showed it as paused(auto) before).
    await pausedAuto();
    const ls = await fx.cli(['ls']);
    assert.match(ls.stdout.toString(), new RegExp(`${id}\\s+paused\\(auto\\)`));
    const procs = await fx.cli(['ps', id]);
    assert.equal(procs.code, 0, procs.stderr);
    assert.equal((await fx.client.get(id)).state, 'running');

    // /metrics: per-sandbox running and paused seconds, auto-pauses and wakes.
    const metrics = await text(await fx.client.check(await fx.client.raw({ method: 'GET', path: '/metrics' })));
    const paus = Number(new RegExp(`kiln_sandbox_paused_seconds_total\\{sandbox="${id}"\\} ([0-9.e+]+)`).exec(metrics)?.[1]);
    assert.ok(paus >= view.pausedSeconds, `paused seconds in /metrics: ${paus} (inspect said ${view.pausedSeconds} before the later pauses)`);
    assert.match(metrics, new RegExp(`kiln_sandbox_running_seconds_total\\{sandbox="${id}"\\} [0-9.]+`));
    assert.match(metrics, /kiln_sandbox_auto_pauses_total 3\b/);
    assert.match(metrics, /kiln_sandbox_wakes_total 3\b/);

    // A user pause is not woken: guest calls get INVALID_STATE until resume.
    const p = await fx.cli(['pause', id]);
    assert.equal(p.code, 0, p.stderr);
    await assert.rejects(fx.sh(id, 'true'), (err: { code?: string }) => err.code === 'INVALID_STATE');
    assert.equal((await fx.client.get(id)).pausedBy, 'user');
    assert.equal((await fx.cli(['resume', id])).code, 0);
    assert.equal((await fx.sh(id, 'echo ok')).out.trim(), 'ok');
    await fx.client.destroy(id);
  });
});
