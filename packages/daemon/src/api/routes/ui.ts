/**
 * The web dashboard (packages/dashboard, built by `npm run build`): static files at /ui, open
 * on the TCP listener without a key (they hold no data; the page asks for an API key and sends
 * it as a Bearer header on every API call). Only the files the build wrote are served, from a
 * list read at start — no path from the request ever reaches the file system.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { KilnError } from '../../errors.js';

/** Where the built dashboard is: $KILN_UI_DIR, or packages/dashboard/dist beside the daemon. */
export const uiDir = (): string => process.env.KILN_UI_DIR ?? fileURLToPath(new URL('../../../../dashboard/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/**
 * Same-origin everything; no inline script. Inline styles are allowed (the chart and terminal
 * libraries size their elements with style attributes).
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function listFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return files; // not built: /ui answers UI_NOT_BUILT
  }
  for (const n of names) {
    const p = join(dir, n);
    if (TYPES[extname(n)] && statSync(p).isFile()) files.set(n, p);
  }
  return files;
}

export function registerUiRoutes(app: FastifyInstance, dir = uiDir()): void {
  const files = listFiles(dir);
  const send = (reply: FastifyReply, name: string) => {
    const path = files.get(name);
    if (!path) throw new KilnError('UI_NOT_FOUND', files.size ? `no such dashboard file: ${name}` : `the dashboard is not built (no files in ${dir}): run npm run build`, { status: 404 });
    return reply
      .header('content-type', TYPES[extname(name)] as string)
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', name === 'index.html' ? 'no-cache' : 'max-age=300')
      .send(readFileSync(path));
  };
  const hide = { schema: { hide: true } };
  app.get('/ui', hide, async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui/', hide, async (_req, reply) => send(reply, 'index.html'));
  app.get<{ Params: { '*': string } }>('/ui/*', hide, async (req, reply) => send(reply, req.params['*'] || 'index.html'));
}
