/** kiln daemon — runs kilnd in the foreground; kiln image build — builds the guest image. */
import type { Command } from 'commander';
import { buildDefaultTemplate, buildImage, startDaemon, DEFAULT_CONFIG } from '@kiln/daemon';
import { fail } from '../output.js';

export function registerDaemonCommands(program: Command): void {
  program
    .command('daemon')
    .description('run kilnd in the foreground')
    .option('--state-dir <DIR>', 'state directory (default /var/lib/kiln)')
    .option('--accel <auto|kvm|tcg>', 'accelerator (default auto)')
    .option('--destroy-on-exit', 'destroy every sandbox when the daemon exits (default: keep them for re-adoption)')
    .option('--log-level <LEVEL>', 'log level (default info)')
    .option('--pool <N>', 'keep N restored, unassigned sandboxes of the default shape ready (default 0)')
    .option('--net-uplink <host|none|netns:NAME>', 'where sandbox traffic leaves: the host (masqueraded), none, or a named netns (default host; $KILN_NET_UPLINK)')
    .option('--net-subnet <CIDR>', 'sandbox address space, one /29 per sandbox (default 10.210.0.0/16; $KILN_NET_SUBNET)')
    .option('--net-dns <IP,…>', "upstream DNS of the sandbox resolvers (default the host's resolv.conf; $KILN_NET_DNS)")
    .option('--no-net', 'give sandboxes no network at all (default: networking on)')
    .option('--events-max-age-days <DAYS>', 'delete lifecycle events older than this; 0 = no age limit (default 30; $KILN_EVENTS_MAX_AGE_DAYS)')
    .option('--events-max-rows <N>', 'keep at most the newest N lifecycle events; 0 = no count limit (default 100000; $KILN_EVENTS_MAX_ROWS)')
    .option('--insecure-no-jail', "run QEMU without its jail (needed to start VMs when kilnd is not root; a guest escaping QEMU then has kilnd's rights; $KILN_INSECURE_NO_JAIL=1)")
    .action(async (o: { stateDir?: string; accel?: string; destroyOnExit?: boolean; logLevel?: string; pool?: string; netUplink?: string; netSubnet?: string; netDns?: string; net?: boolean; eventsMaxAgeDays?: string; eventsMaxRows?: string; insecureNoJail?: boolean }, cmd: Command) => {
      try {
        const g = cmd.optsWithGlobals<{ socket?: string }>();
        if (o.accel !== undefined && !['auto', 'kvm', 'tcg'].includes(o.accel)) throw new Error(`--accel must be auto, kvm or tcg (got ${o.accel})`);
        if (o.pool !== undefined && !/^\d+$/.test(o.pool)) throw new Error(`--pool must be a whole number (got ${o.pool})`);
        if (o.eventsMaxAgeDays !== undefined && !/^\d+(\.\d+)?$/.test(o.eventsMaxAgeDays)) throw new Error(`--events-max-age-days must be a number of days (got ${o.eventsMaxAgeDays})`);
        if (o.eventsMaxRows !== undefined && !/^\d+$/.test(o.eventsMaxRows)) throw new Error(`--events-max-rows must be a whole number (got ${o.eventsMaxRows})`);
        const d = await startDaemon({
          ...(o.pool !== undefined ? { poolSize: Number(o.pool) } : {}),
          ...(g.socket ?? process.env.KILN_SOCKET ? { socket: g.socket ?? process.env.KILN_SOCKET } : {}),
          ...(o.stateDir ? { stateDir: o.stateDir } : {}),
          ...(o.accel ? { accel: o.accel as 'auto' | 'kvm' | 'tcg' } : {}),
          ...(o.logLevel ? { logLevel: o.logLevel } : {}),
          ...(o.insecureNoJail ? { insecureNoJail: true } : {}),
          destroyOnExit: o.destroyOnExit ?? false,
          events: {
            ...DEFAULT_CONFIG.events,
            ...(o.eventsMaxAgeDays !== undefined ? { maxAgeMs: Number(o.eventsMaxAgeDays) * 24 * 3600 * 1000 } : {}),
            ...(o.eventsMaxRows !== undefined ? { maxRows: Number(o.eventsMaxRows) } : {}),
          },
          network: {
            ...DEFAULT_CONFIG.network,
            ...(o.net === false ? { enabled: false } : {}),
            ...(o.netUplink ? { uplink: o.netUplink } : {}),
            ...(o.netSubnet ? { subnet: o.netSubnet } : {}),
            ...(o.netDns ? { dnsUpstream: o.netDns.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
          },
        });
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
