/**
 * Templates for the sandbox manager: finds the template a create restores from, builds
 * missing ones lazily in the background (one at a time, deduplicated by key), makes the
 * copy-on-write disk overlay for a clone, and forgets templates whose image is gone.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { KilnError } from '../errors.js';
import type { TemplateSource } from '../sandbox/create-steps.js';
import type { GuestImage } from '../sandbox/guest-agent.js';
import type { SandboxSpec } from '../sandbox/types.js';
import { buildTemplate, type BootCustomization, type TemplateBuildDeps, type TemplateProgress } from './builder.js';
import { templateKey, type TemplateManifest, type TemplateShape } from './manifest.js';
import { OverlayMaker } from './overlay.js';
import { TemplateStore } from './store.js';

export interface TemplateServiceOptions extends Omit<TemplateBuildDeps, 'store'> {
  stateDir: string;
  logger: Logger;
  resolveImage(): Promise<GuestImage | null>;
  /** Build a missing template in the background after a cold boot. Default true. */
  lazy?: boolean;
}

export class TemplateService implements TemplateSource {
  readonly store: TemplateStore;
  private readonly building = new Map<string, Promise<TemplateManifest>>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly overlays = new OverlayMaker();

  constructor(private readonly o: TemplateServiceOptions) {
    this.store = new TemplateStore(o.stateDir);
  }

  get tcgTbSizeMiB(): number {
    return this.o.tcgTbSizeMiB;
  }

  keyFor(shape: TemplateShape, image: GuestImage): string {
    const caps = this.o.driver.capabilities();
    return templateKey({ ...shape, imageHash: image.hash, accel: caps.accel, vmmVersion: this.o.vmmVersion, tcgTbSizeMiB: this.o.tcgTbSizeMiB });
  }

  async find(spec: SandboxSpec, image: GuestImage, tenant: string | null = null): Promise<{ template: TemplateManifest | null; reason: string }> {
    if (spec.template) {
      const t = await this.store.resolve(spec.template, tenant);
      if (!t) throw new KilnError('TEMPLATE_NOT_FOUND', `template ${spec.template} not found`, { status: 404 });
      if (t.imageHash !== image.hash) {
        throw new KilnError('TEMPLATE_STALE', `template ${spec.template} was made from image ${t.imageHash}, not the current ${image.hash}`, { status: 409 });
      }
      return { template: t, reason: '' };
    }
    const shape = { memoryMiB: spec.memoryMiB, vcpus: spec.vcpus, diskGiB: spec.diskGiB };
    const key = this.keyFor(shape, image);
    const t = await this.store.byKey(key);
    if (t) return { template: t, reason: '' };
    const lazy = this.o.lazy ?? true;
    if (lazy) this.ensure(shape, image);
    return {
      template: null,
      reason: `no template for ${shape.memoryMiB} MiB/${shape.vcpus} vCPU/${shape.diskGiB} GiB on image ${image.hash}${lazy ? '; building one in the background' : ''}`,
    };
  }

  async shapeOf(name: string, tenant: string | null = null): Promise<(TemplateShape & { env?: Record<string, string>; workdir?: string; user?: string }) | null> {
    const t = await this.store.resolve(name, tenant);
    if (!t) return null;
    const c = t.config;
    return { memoryMiB: t.memoryMiB, vcpus: t.vcpus, diskGiB: t.diskGiB, ...(c ? { env: c.env, workdir: c.workdir, user: c.user } : {}) };
  }

  /** Builds a template from a container image's root (template/from-image.ts); queued like every build. */
  buildCustom(shape: TemplateShape, image: GuestImage, custom: BootCustomization, opts: { name: string; onProgress?: TemplateProgress }): Promise<TemplateManifest> {
    const p = this.queue.then(() => buildTemplate({ ...this.o, store: this.store }, image, shape, { ...opts, custom }));
    this.queue = p.catch(() => undefined);
    return p;
  }

  async createOverlay(template: TemplateManifest, path: string): Promise<void> {
    await this.overlays.create(template.scratch, path);
  }

  /** Builds (or returns) the template for a shape; concurrent calls share one build. */
  build(shape: TemplateShape, image: GuestImage, opts: { name?: string; onProgress?: TemplateProgress } = {}): Promise<TemplateManifest> {
    const key = this.keyFor(shape, image);
    const inflight = this.building.get(key);
    if (inflight) return inflight;
    const p = this.queue.then(() => buildTemplate({ ...this.o, store: this.store }, image, shape, opts));
    this.queue = p.catch(() => undefined);
    this.building.set(key, p);
    void p.finally(() => this.building.delete(key)).catch(() => undefined);
    return p;
  }

  private ensure(shape: TemplateShape, image: GuestImage): void {
    this.build(shape, image).then(
      (t) => this.o.logger.info({ template: t.name, key: t.key, buildMs: t.buildMs }, 'template built'),
      (err: unknown) => this.o.logger.warn({ err }, 'background template build failed'),
    );
  }

  /** Waits for background builds (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.building.values()]);
  }

  /** Removes half-built templates and templates whose image no longer exists. */
  async gc(): Promise<string[]> {
    const removed = await this.store.removePartial();
    for (const t of await this.store.list()) {
      if (!existsSync(join(this.o.stateDir, 'images', t.imageHash))) {
        await this.store.remove(t.key);
        removed.push(t.name);
      }
    }
    return removed;
  }
}
