// kiln-agent entry point: runs inside the guest as root, started by the guest init.
//   kiln-agent                       find the virtio-serial port named org.kiln.agent and serve it
//   kiln-agent --port /dev/vport1p1  serve this port
//   kiln-agent --listen-unix PATH    serve a unix socket (tests)
// Options: --docker-socket PATH (default /run/docker.sock), --sys-root DIR (tests), --debug,
//          --guestctl PATH (the resident helper; default /opt/kiln/bin/kiln-guestctl),
//          --pty-helper PATH (runs a process on a PTY; default /opt/kiln/bin/kiln-pty).
import './threadpool.js';
import { parseArgs } from 'node:util';
import { errorFields, log, setDebug } from './log.js';
import type { AgentConfig } from './ops/index.js';
import { killAllExecs } from './ops/exec.js';
import { processes } from './ops/processes.js';
import { servePort } from './serve-port.js';
import { findPort } from './virtio-port.js';
import { guestCtl, servePortHelper } from './guestctl.js';
import { serveUnix } from './serve-unix.js';
import { AGENT_VERSION } from './version.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'listen-unix': { type: 'string' },
      'docker-socket': { type: 'string', default: '/run/docker.sock' },
      'sys-root': { type: 'string', default: '' },
      guestctl: { type: 'string', default: '/opt/kiln/bin/kiln-guestctl' },
      'pty-helper': { type: 'string', default: '/opt/kiln/bin/kiln-pty' },
      debug: { type: 'boolean', default: false },
    },
    strict: true,
  });
  setDebug(values.debug === true);
  const config: AgentConfig = {
    agentVersion: AGENT_VERSION,
    dockerSocket: values['docker-socket'] as string,
    sysRoot: values['sys-root'] as string,
    guestCtlPath: values.guestctl as string,
    ptyHelperPath: values['pty-helper'] as string,
  };
  // Running before the template's snapshot is taken, so every clone has it already.
  guestCtl(config)?.start();
  // The agent must outlive anything a request does; log and carry on.
  process.on('uncaughtException', (err) => log('error', 'uncaught exception', errorFields(err)));
  process.on('unhandledRejection', (err) => log('error', 'unhandled rejection', errorFields(err)));
  process.on('SIGPIPE', () => undefined);
  // Commands run in their own process groups, so they would outlive the agent: take them along.
  process.on('exit', () => {
    killAllExecs();
    processes.killAll();
  });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      log('info', 'exiting on signal', { signal: sig });
      process.exit(0);
    });
  }

  log('info', 'starting', { version: AGENT_VERSION, pid: process.pid, node: process.version });
  if (values['listen-unix']) return serveUnix(values['listen-unix'], config);
  await servePortHelper(config);
  const port = values.port ?? (await findPort());
  log('info', 'serving port', { port });
  await servePort(port, config);
}

main().catch((err: unknown) => {
  log('error', 'fatal', errorFields(err));
  process.exit(1);
});
