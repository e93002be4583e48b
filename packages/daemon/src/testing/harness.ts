/** Builds a manager (and optionally the API) over fakes in a temporary state directory. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildApi } from '../api/server.js';
import { SandboxManager, type ManagerOptions } from '../sandbox/manager.js';
import type { ConnectAgent, GuestAgent } from '../sandbox/guest-agent.js';
import { Store } from '../store/store.js';
import { FakeDriver, fakeAgent, fakeScratchDisk, type FakeAgentOptions } from './fakes.js';
import type { FakeNetwork } from './fake-network.js';

/** `connectAgent` replaces the fake agent (e.g. with the real agent over a unix socket: testing/real-agent.ts). */
export async function fakeHarness(o: { agent?: FakeAgentOptions; connectError?: Error; poolSize?: number; network?: FakeNetwork; connectAgent?: ConnectAgent } = {}) {
  const stateDir = await mkdtemp(join(tmpdir(), 'kiln-unit-'));
  const store = new Store(join(stateDir, 'kiln.db'));
  const driver = new FakeDriver();
  const logger = pino({ level: 'silent' });
  const agents: Array<GuestAgent & { closed: boolean; configured: unknown[] }> = [];
  const mkManager = (extra: Partial<ManagerOptions> = {}) =>
    new SandboxManager({
      stateDir,
      store,
      driver,
      logger,
      resolveImage: async () => ({ hash: 'h1', kernel: '/k', initrd: '/i', rootfs: '/r', cmdline: '' }),
      createScratchDisk: fakeScratchDisk,
      poolSize: o.poolSize ?? 0,
      ...(o.network ? { network: o.network.asService() } : {}),
      connectAgent: async (path, opts) => {
        if (o.connectAgent) return o.connectAgent(path, opts);
        if (o.connectError) throw o.connectError;
        const a = fakeAgent(o.agent);
        agents.push(a);
        return a;
      },
      ...extra,
    });
  const manager = mkManager();
  await manager.init();
  const app = await buildApi({ manager, logger, info: () => ({ version: 't', driver: {}, image: null, stateDir }) });
  return {
    stateDir,
    store,
    driver,
    manager,
    app,
    agents,
    mkManager,
    async close() {
      await app.close();
      await manager.shutdown();
      store.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
