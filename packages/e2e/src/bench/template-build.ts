/**
 * Bench figure (issue 15): `kiln template build` of a small Dockerfile (kiln/busybox, COPY, RUN,
 * EXPOSE, CMD of a web server), wall time from the request to the ready template, and where it
 * goes (builder sandbox, docker build, export, template boot to docker-ready, start + ready
 * check + snapshot), from the build's own event stream. Run alone:
 * `node packages/e2e/dist/bench/template-build.js` (starts its own kilnd).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, DaemonFixture, integrationSkipReason } from '../harness.js';
import { fmtMs, summarize, type Summary } from './stats.js';

export interface TemplateBuildFigures {
  total: Summary;
  phases: Record<string, Summary>;
}

/** Runs the CLI build, timing each `==> step` line from the previous one. */
function timedBuild(socket: string, name: string, ctx: string): Promise<{ ms: number; phases: Map<string, number> }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const phases = new Map<string, number>();
    let last = t0;
    let current = 'request';
    const p = spawn(process.execPath, [CLI, '--socket', socket, 'template', 'build', name, '-q', ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
    let buf = '';
    let err = '';
    p.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-4000);
      buf += b.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        const m = /^==> ([a-z-]+)/.exec(l);
        if (!m) continue;
        const now = performance.now();
        phases.set(current, (phases.get(current) ?? 0) + (now - last));
        last = now;
        current = m[1] as string;
      }
    });
    p.on('close', (code) => {
      const now = performance.now();
      phases.set(current, (phases.get(current) ?? 0) + (now - last));
      if (code === 0) resolve({ ms: now - t0, phases });
      else reject(new Error(`template build failed: ${err}`));
    });
  });
}

export async function benchTemplateBuild(log: (s: string) => void, builds: number): Promise<TemplateBuildFigures> {
  const fx = new DaemonFixture('bench-tplbuild');
  const ctx = mkdtempSync('/tmp/kiln-it-bench-tplctx-');
  await fx.start();
  try {
    mkdirSync(join(ctx, 'www'));
    writeFileSync(join(ctx, 'www/index.html'), 'bench\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM kiln/busybox\nENV MODE=bench\nWORKDIR /srv\nCOPY www /srv/www\nRUN echo ok > /srv/www/ok.txt\nEXPOSE 8080\nCMD ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]\n');
    const totals: number[] = [];
    const per = new Map<string, number[]>();
    for (let i = 0; i < builds; i++) {
      const name = `bench-tpl-${i}`;
      const r = await timedBuild(fx.socket, name, ctx);
      totals.push(r.ms);
      for (const [k, v] of r.phases) per.set(k, [...(per.get(k) ?? []), v]);
      await fx.client.call('DELETE', `/v1/templates/${name}`);
    }
    const total = summarize(totals);
    log(`${'(14) template build, small Dockerfile'.padEnd(44)} p50 ${fmtMs(total.p50).padStart(10)}   p95 ${fmtMs(total.p95).padStart(10)}   n=${total.n}`);
    const phases: Record<string, Summary> = {};
    for (const [k, v] of per) {
      phases[k] = summarize(v);
      log(`    ${k.padEnd(40)} p50 ${fmtMs(phases[k].p50).padStart(10)}`);
    }
    return { total, phases };
  } finally {
    await fx.close();
    rmSync(ctx, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const skip = integrationSkipReason();
  if (skip) throw new Error(`cannot run: ${skip}`);
  benchTemplateBuild((s) => console.log(s), Number(process.env.KILN_BENCH_TEMPLATE_BUILDS ?? 1)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
