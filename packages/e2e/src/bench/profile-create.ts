/** `node packages/e2e/dist/bench/profile-create.js`: N (env, default 3) restored creates one after another, each creation step's duration and how the clone was personalized; SHELL_CMD runs in each first. A profiling aid, not a test. */
import { DaemonFixture } from '../harness.js';

const N = Number(process.env.N ?? 3);
const fx = new DaemonFixture('profile');
await fx.start();
try {
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const sb = await fx.client.create({});
    const tCreated = performance.now() - t0;
    for await (const ev of fx.client.exec(sb.id, { argv: ['true'] })) void ev;
    const total = performance.now() - t0;
    const more: number[] = [];
    for (let k = 0; k < 3; k++) {
      const t1 = performance.now();
      for await (const ev of fx.client.exec(sb.id, { argv: ['true'] })) void ev;
      more.push(Math.round(performance.now() - t1));
    }
    const evs = await fx.client.events(sb.id);
    const steps = evs.filter((e) => e.type === 'step').map((e) => `${String(e.data.step)}=${Math.round(Number(e.data.durationMs))}`);
    const p = Object.assign({}, ...evs.filter((e) => e.type === 'personalized' || e.type === 'personalize-fallback').map((e) => e.data));
    const d = evs.find((e) => e.type === 'docker-ready')?.data;
    const vm = evs.find((e) => e.type === 'vm-restored')?.data ?? {};
    steps.push(Object.entries(vm).filter(([k]) => k.endsWith('Ms')).map(([k, v]) => `${k}=${String(v)}`).join(' '));
    steps.push(JSON.stringify(p), `docker=${String(d?.waitedMs)}`);
    console.log(`create ${tCreated.toFixed(0)} ms, +exec ${total.toFixed(0)} ms (then ${more.join(', ')}): ${steps.join(' ')}`);
    if (process.env.SHELL_CMD) {
      let out = '';
      for await (const ev of fx.client.exec(sb.id, { argv: ['sh', '-c', process.env.SHELL_CMD] })) {
        if (ev.type === 'stdout' || ev.type === 'stderr') out += Buffer.from(ev.data, 'base64').toString();
      }
      console.log(out);
    }
    await fx.client.destroy(sb.id);
  }
} finally {
  await fx.close();
}
