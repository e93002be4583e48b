/**
 * Kernel module dependencies from modules.dep (computed, never guessed): the load order for a
 * set of modules, each after everything it depends on.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ImageBuildError } from './errors.js';

/** module name (dashes as underscores) → its path relative to the module dir and its deps' names */
export type ModuleDeps = Map<string, { path: string; deps: string[] }>;

export const moduleName = (path: string): string => basename(path).replace(/\.ko(\.[a-z]+)?$/, '').replace(/-/g, '_');

export function parseModulesDep(text: string): ModuleDeps {
  const map: ModuleDeps = new Map();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean).map(moduleName);
    map.set(moduleName(path), { path, deps });
  }
  return map;
}

/** Names of modules built into the kernel (modules.builtin). */
export function parseBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').filter(Boolean).map(moduleName));
}

/**
 * Paths (relative to the module dir) of `wanted` and all their dependencies, each after its
 * dependencies, in the order `wanted` names them. Built-in modules are skipped.
 * @throws ImageBuildError for a module that is neither loadable nor built in
 */
export function loadOrder(deps: ModuleDeps, builtin: ReadonlySet<string>, wanted: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (raw: string, chain: string[]): void => {
    const name = raw.replace(/-/g, '_');
    if (seen.has(name)) return;
    const mod = deps.get(name);
    if (!mod) {
      if (builtin.has(name)) return;
      throw new ImageBuildError(`kernel module ${name} not found (needed by ${chain.join(' → ') || 'the recipe'})`);
    }
    seen.add(name);
    // modules.dep lists deps in load-reverse order; visit each first so it lands earlier
    for (const d of [...mod.deps].reverse()) visit(d, [...chain, name]);
    out.push(mod.path);
  };
  for (const w of wanted) visit(w, []);
  return out;
}

/** Load order for `wanted` read from `<modulesDir>/modules.dep` and `modules.builtin`. */
export async function moduleLoadOrder(modulesDir: string, wanted: readonly string[]): Promise<string[]> {
  const [dep, builtin] = await Promise.all([
    readFile(join(modulesDir, 'modules.dep'), 'utf8'),
    readFile(join(modulesDir, 'modules.builtin'), 'utf8').catch(() => ''),
  ]);
  return loadOrder(parseModulesDep(dep), parseBuiltin(builtin), wanted);
}
