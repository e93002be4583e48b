/** kilnd [run] — runs kilnd in the foreground; kilnd image build — builds the guest image. */
import type { Command } from 'commander';
import { DAEMON_OPTIONS, daemonConfigFromOptions, type DaemonFlags } from '../daemon-options.js';
import { fail } from './output.js';

export function registerRunCommand(program: Command): void {
  const run = program.command('run', { isDefault: true }).description('run kilnd in the foreground (the default command)');
  for (const [flags, description] of DAEMON_OPTIONS) run.option(flags, description);
  run
    .action(async (o: DaemonFlags, cmd: Command) => {
      try {
        const g = cmd.optsWithGlobals<{ socket?: string }>();
        const { startDaemon } = await import('../daemon.js');
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

}

export function registerImageCommands(program: Command): void {
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
        // Progress on a terminal; piped or redirected, only the result line (stdout) and errors.
        const say = (line: string) => {
          if (process.stderr.isTTY) process.stderr.write(line);
        };
        const stateDir = o.stateDir ?? process.env.KILN_STATE_DIR ?? '/var/lib/kiln';
        if (o.accel !== undefined && !['auto', 'kvm', 'tcg'].includes(o.accel)) throw new Error(`--accel must be auto, kvm or tcg (got ${o.accel})`);
        const { buildImage } = await import('../image/index.js');
        const { buildDefaultTemplate } = await import('../template/default-template.js');
        const m = await buildImage({
          stateDir,
          force: o.force ?? false,
          onProgress: (ev) => say(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${ev.step}${ev.detail ? `: ${ev.detail}` : ''}${ev.done ? ' ✓' : ''}\n`),
        });
        if (o.template) {
          const t = await buildDefaultTemplate({
            stateDir,
            ...(o.accel ? { accel: o.accel as 'auto' | 'kvm' | 'tcg' } : {}),
            onProgress: (step, detail) => say(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] template ${step}${detail ? `: ${detail}` : ''}\n`),
          });
          say(`default template ${t.name} (${t.key}) ready\n`);
        }
        if (o.json) process.stdout.write(JSON.stringify(m, null, 2) + '\n');
        else process.stdout.write(`image ${m.hash} (kernel ${m.kernelVersion}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      } catch (err) {
        fail(err);
      }
    });
}
