import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { loadOrder, parseBuiltin, parseModulesDep } from './modules.js';

// Excerpt of the cloud kernel's modules.dep (6.1.0-56-cloud-amd64).
const DEP = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/overlayfs/overlay.ko:
kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
`;

describe('module load order', () => {
  const deps = parseModulesDep(DEP);
  const builtin = parseBuiltin('kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n');

  it('puts virtio_ring and virtio before virtio_mmio, and each dependency before its user', () => {
    const order = loadOrder(deps, builtin, ['virtio_mmio', 'virtio_blk', 'overlay']).map((p) => p.split('/').pop());
    assert.deepEqual(order, ['virtio_ring.ko', 'virtio.ko', 'virtio_mmio.ko', 'virtio_blk.ko', 'overlay.ko']);
  });

  it('resolves transitive dependencies', () => {
    const order = loadOrder(deps, builtin, ['br_netfilter']).map((p) => p.split('/').pop());
    assert.deepEqual(order, ['llc.ko', 'stp.ko', 'bridge.ko', 'br_netfilter.ko']);
  });

  it('skips built-in modules and rejects unknown ones', () => {
    assert.deepEqual(loadOrder(deps, builtin, ['ext4']), []);
    assert.throws(() => loadOrder(deps, builtin, ['no_such_mod']), /no_such_mod not found/);
  });
});
