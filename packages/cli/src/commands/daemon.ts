/** kiln daemon — runs kilnd in the foreground; kiln image build — builds the guest image. */
import type { Command } from 'commander';
import { buildDefaultTemplate, buildImage, startDaemon, DAEMON_OPTIONS, daemonConfigFromOptions, type DaemonFlags } from '@kiln/daemon';
import { fail } from '../output.js';

export function registerDaemonCommands(program: Command): void {
  const daemon = program.command('daemon').description('run kilnd in the foreground');
  for (const [flags, description] of DAEMON_OPTIONS) daemon.option(flags, description);
  daemon
    .action(async (o: DaemonFlags, cmd: Command) => {
      try {
        const g = cmd.optsWithGlobals<{ socket?: string }>();
        const d = await startDaemon(daemonConfigFromOptions({ ...o, ...(g.socket ? { socket: g.socket } : {}) }));
        const stop = (sig: string) => {
          d.logger.info({ signal: sig }, 'shutting down');
          d.close().then(
            () => process.exit(0),
            (err: unknown) => {
              d.logger.error({ err }, 'shutdown failed');
              process.exit(1);
            },
          );
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      } catch (err) {
        fail(err);
      }
    });

  const image = program.command('image').description('guest images');
  image
    .command('build')
    .description('build the guest image (kernel, initramfs, root filesystem); cached by the hash of its recipe')
    .option('--state-dir <DIR>', 'state directory (default /var/lib/kiln)')
    .option('--force', 'rebuild even if a cached image exists')
    .option('--no-template', 'do not make the default template (a snapshot of a booted, docker-ready VM)')
    .option('--accel <auto|kvm|tcg>', 'accelerator for the template VM (default auto)')
    .option('--json', 'print the image manifest as JSON')
    .action(async (o: { stateDir?: string; force?: boolean; json?: boolean; template: boolean; accel?: string }) => {
      try {
        const t0 = Date.now();
        const stateDir = o.stateDir ?? process.env.KILN_STATE_DIR ?? '/var/lib/kiln';
        if (o.accel !== undefined && !['auto', 'kvm', 'tcg'].includes(o.accel)) throw new Error(`--accel must be auto, kvm or tcg (got ${o.accel})`);
        const m = await buildImage({
          stateDir,
          force: o.force ?? false,
          onProgress: (ev) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${ev.step}${ev.detail ? `: ${ev.detail}` : ''}${ev.done ? ' ✓' : ''}\n`),
        });
        if (o.template) {
          const t = await buildDefaultTemplate({
            stateDir,
            ...(o.accel ? { accel: o.accel as 'auto' | 'kvm' | 'tcg' } : {}),
            onProgress: (step, detail) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] template ${step}${detail ? `: ${detail}` : ''}\n`),
          });
          process.stderr.write(`default template ${t.name} (${t.key}) ready\n`);
        }
        if (o.json) process.stdout.write(JSON.stringify(m, null, 2) + '\n');
        else process.stdout.write(`image ${m.hash} (kernel ${m.kernelVersion}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      } catch (err) {
        fail(err);
      }
    });
}
