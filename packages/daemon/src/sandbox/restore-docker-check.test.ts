// A clone of a boot template is handed out before its dockerd answers again; a failed check
// afterwards fails the sandbox. Over fakes (the VMM and agent), with a stand-in for the guest's
// kiln-guestctl on the VM's guestctl socket: the real helper in a real clone is e2e's part.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { Store } from '../store/store.js';
import { FakeDriver, fakeAgent, fakeScratchDisk } from '../testing/fakes.js';
import { lineServer } from '../testing/line-server.js';
import type { VmHandle, VmSpec } from '../vmm/driver.js';
import { vmPaths } from '../vmm/driver.js';
import type { TemplateManifest } from '../template/manifest.js';
import { SandboxManager } from './manager.js';

/**
 * Restores "run" a stand-in guestctl that answers every request ok, and docker-ping with `docker`
 * (never, for 'hang').
 */
class RestoringDriver extends FakeDriver {
  servers: Server[] = [];
  /** The guest ends of the helper channels: destroying one is what a VMM's death looks like to kilnd. */
  channels: Socket[] = [];
  constructor(private readonly docker: string) {
    super();
  }

  override async restore(spec: VmSpec, opts?: { beforeResume?: (vm: VmHandle) => Promise<void> }): Promise<VmHandle> {
    const vm = await this.start(spec);
    const path = vmPaths(spec.runDir).guestctlSocket as string;
    const server = await lineServer(path, (line) => (line.startsWith('docker-ping') ? (this.docker === 'hang' ? null : this.docker) : 'ok'));
    server.on('connection', (s: Socket) => this.channels.push(s));
    this.servers.push(server);
    await opts?.beforeResume?.(vm);
    return vm;
  }
}

async function withManager(docker: string, fn: (m: SandboxManager, store: Store, driver: RestoringDriver) => Promise<void>): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'kiln-restore-check-'));
  const store = new Store(join(stateDir, 'kiln.db'));
  const driver = new RestoringDriver(docker);
  const template = { name: 'default', key: 'k1', source: 'boot', sharedMemory: true, stateFile: '/t/state', memFile: '/t/mem', scratch: '/t/scratch', memoryMiB: 1024, vcpus: 2, diskGiB: 10 } as TemplateManifest;
  const manager = new SandboxManager({
    stateDir,
    store,
    driver,
    logger: pino({ level: 'silent' }),
    resolveImage: async () => ({ hash: 'h1', kernel: '/k', initrd: '/i', rootfs: '/r', cmdline: '' }),
    createScratchDisk: fakeScratchDisk,
    connectAgent: async () => fakeAgent(),
    templates: {
      find: async () => ({ template, reason: '' }),
      createOverlay: async (_t, path) => writeFile(path, ''),
      shapeOf: async () => null,
    },
    restoredDockerCheckMs: 500,
  });
  await manager.init();
  try {
    await fn(manager, store, driver);
  } finally {
    await manager.shutdown();
    for (const s of driver.servers) s.close();
    store.close();
    await rm(stateDir, { recursive: true, force: true });
  }
}

const waitFor = async <T>(what: string, f: () => T | null, ms = 5000): Promise<T> => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    const v = f();
    if (v !== null) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
};

test('a clone of a boot template is running before its dockerd is checked; the check follows', async () => {
  await withManager('ok 12', async (m, store) => {
    const sb = await m.create({});
    assert.equal(sb.state, 'running');
    const types = () => store.events(sb.id).map((e) => e.type);
    assert.ok(types().includes('docker-check'), types().join(','));
    await waitFor('docker-ready event', () => (types().includes('docker-ready') ? true : null));
    assert.equal(store.get(sb.id)?.state, 'running');
  });
});

test('a clone whose dockerd does not answer after the create is failed with DOCKER_NOT_READY', async () => {
  await withManager('err 110 dockerd did not answer on /run/docker.sock within 500 ms', async (m, store) => {
    const sb = await m.create({});
    assert.equal(sb.state, 'running');
    const failed = await waitFor('failed', () => (store.get(sb.id)?.state === 'failed' ? store.get(sb.id) : null));
    assert.equal(failed?.error?.code, 'DOCKER_NOT_READY');
    assert.match(failed?.error?.message ?? '', /dockerd did not answer/);
    assert.ok(store.events(sb.id).some((e) => e.type === 'docker-ready-failed'));
  });
});

test('a check cut short by the VM dying reports the VM exit, not DOCKER_NOT_READY', async () => {
  // dockerd has not answered yet when the VMM dies: the channel closes (the check fails at once),
  // and the VMM's exit is seen a moment later, as with a real QEMU.
  await withManager('hang', async (m, store, driver) => {
    const sb = await m.create({});
    assert.equal(sb.state, 'running');
    await waitFor('helper channel', () => (driver.channels.length > 0 ? true : null));
    for (const s of driver.channels) s.destroy();
    await waitFor('check failed', () => (store.events(sb.id).some((e) => e.type === 'docker-ready-failed') ? true : null));
    await new Promise((r) => setTimeout(r, 100));
    driver.crash(store.get(sb.id)?.vm?.pid ?? -1);
    const failed = await waitFor('failed', () => (store.get(sb.id)?.state === 'failed' ? store.get(sb.id) : null));
    assert.equal(failed?.error?.code, 'VM_EXITED', JSON.stringify(failed?.error));
  });
});

test('a check that fails while the VM lives on fails the sandbox with DOCKER_NOT_READY', async () => {
  await withManager('hang', async (m, store, driver) => {
    const sb = await m.create({});
    await waitFor('helper channel', () => (driver.channels.length > 0 ? true : null));
    for (const s of driver.channels) s.destroy();
    const failed = await waitFor('failed', () => (store.get(sb.id)?.state === 'failed' ? store.get(sb.id) : null));
    assert.equal(failed?.error?.code, 'DOCKER_NOT_READY', JSON.stringify(failed?.error));
  });
});
