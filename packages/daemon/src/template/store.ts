/** Finding, listing and removing templates under <stateDir>/templates. */
import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pidExists } from '../util/proc.js';
import { readTemplate, type TemplateManifest } from './manifest.js';

/** The namespace of a template: its tenant, or null for a shared (admin-made) one. */
export const ownerOf = (t: TemplateManifest): string | null => t.tenant ?? null;

const newest = (ts: TemplateManifest[]): TemplateManifest | null =>
  ts.sort((a, b) => (b.version ?? 0) - (a.version ?? 0) || b.createdAt.localeCompare(a.createdAt))[0] ?? null;

export class TemplateStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, 'templates');
  }

  /** A build's temp dir: named after the building process, so only its own crash leaves it stale. */
  tempDir(key: string): string {
    return join(this.root, `.tmp-${key}-${process.pid}-${randomBytes(3).toString('hex')}`);
  }

  dirFor(key: string): string {
    return join(this.root, key);
  }

  async list(): Promise<TemplateManifest[]> {
    if (!existsSync(this.root)) return [];
    const out: TemplateManifest[] = [];
    for (const name of await readdir(this.root)) {
      if (name.startsWith('.')) continue;
      const t = await readTemplate(join(this.root, name));
      if (t) out.push(t);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async byKey(key: string): Promise<TemplateManifest | null> {
    return readTemplate(this.dirFor(key));
  }

  /**
   * The newest version of a name in one namespace: a tenant's own templates (`owner` = the
   * tenant) or the shared ones (`owner` = null: the admin's). A rebuild's new version wins once
   * it is ready; older ones stay until removed.
   */
  async byName(name: string, owner: string | null): Promise<TemplateManifest | null> {
    return newest(await this.versions(name, owner));
  }

  /** Every version of a name in one namespace (see byName). */
  async versions(name: string, owner: string | null): Promise<TemplateManifest[]> {
    return (await this.list()).filter((t) => t.name === name && ownerOf(t) === owner);
  }

  /**
   * The template a caller means by a name: a tenant's own first, then a shared one; the admin's
   * (tenant null) are the shared ones. Another tenant's template of that name is never found.
   */
  async resolve(name: string, tenant: string | null): Promise<TemplateManifest | null> {
    const all = (await this.list()).filter((t) => t.name === name);
    return (tenant !== null ? newest(all.filter((t) => ownerOf(t) === tenant)) : null) ?? newest(all.filter((t) => ownerOf(t) === null));
  }

  async remove(key: string): Promise<void> {
    await rm(this.dirFor(key), { recursive: true, force: true });
  }

  /**
   * Removes half-built templates: temp dirs whose building process is gone (a crash). A build
   * still running in another process (`kilnd image build` while kilnd starts) is left alone.
   */
  async removePartial(): Promise<string[]> {
    if (!existsSync(this.root)) return [];
    const removed: string[] = [];
    for (const name of await readdir(this.root)) {
      if (!name.startsWith('.tmp-')) continue;
      const pid = /-(\d+)-[0-9a-f]{6}$/.exec(name)?.[1];
      if (pid !== undefined && pidExists(Number(pid))) continue;
      await rm(join(this.root, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }
}
