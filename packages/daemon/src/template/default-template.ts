/**
 * The default template (the default sandbox shape), made right after `kilnd image build` so
 * the first `kiln create` already restores instead of booting.
 */
import { AgentClient } from '@kiln/protocol';
import { createScratchDisk, findImage } from '../image/index.js';
import { SPEC_LIMITS } from '../sandbox/spec.js';
import { KilnError } from '../errors.js';
import type { AccelRequest } from '../vmm/accel.js';
import { QemuDriver } from '../vmm/qemu.js';
import { tcgTbSizeMiB } from '../vmm/tb-size.js';
import { buildTemplate, type TemplateProgress } from './builder.js';
import type { TemplateManifest } from './manifest.js';
import { TemplateStore } from './store.js';

export async function buildDefaultTemplate(o: { stateDir: string; accel?: AccelRequest; tcgTbSizeMiB?: number; onProgress?: TemplateProgress }): Promise<TemplateManifest> {
  const image = await findImage(o.stateDir);
  if (!image) throw new KilnError('IMAGE_NOT_BUILT', 'no guest image for the current recipe; run `kilnd image build`');
  // `kilnd image build`: the size `kilnd run` will use ($KILN_TCG_TB_SIZE_MIB), or the template's key would not match
  const tbSize = o.tcgTbSizeMiB ?? tcgTbSizeMiB();
  const driver = new QemuDriver({ accel: o.accel ?? 'auto', tcgTbSizeMiB: tbSize });
  return buildTemplate(
    {
      driver,
      store: new TemplateStore(o.stateDir),
      connectAgent: (p, c) => AgentClient.connect(p, c),
      createScratchDisk,
      vmmVersion: driver.capabilities().version,
      tcgTbSizeMiB: tbSize,
      // a one-off build: on a loaded host a TCG cold boot of the (larger) trixie guest has taken
      // over 120 s to its agent; give it time rather than fail the setup
      bootTimeoutMs: 300_000,
    },
    image,
    { memoryMiB: SPEC_LIMITS.memoryMiB.default, vcpus: SPEC_LIMITS.vcpus.default, diskGiB: SPEC_LIMITS.diskGiB.default },
    o.onProgress ? { onProgress: o.onProgress } : {},
  );
}
