/**
 * A Node built-in module, loaded only when used (never in a browser). process.getBuiltinModule
 * skips what `import('node:http')` costs at start (its namespace pulls in undici and http2).
 */
export async function builtin<T>(name: string): Promise<T> {
  const get = (globalThis as { process?: { getBuiltinModule?: (n: string) => unknown } }).process?.getBuiltinModule;
  return (get ? get(name) : await import(name)) as T;
}
