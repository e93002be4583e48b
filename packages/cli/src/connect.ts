/**
 * Where the CLI finds kilnd: `--host URL` (or $KILN_HOST) with $KILN_API_KEY drives a remote
 * kilnd over TCP; otherwise `--socket PATH` (or $KILN_SOCKET, default /run/kiln/kiln.sock).
 */
import type { Command } from 'commander';
import { KilnClient, type Target } from './client.js';

export function targetFrom(cmd: Command): Target {
  const g = cmd.optsWithGlobals<{ socket?: string; host?: string }>();
  const env = (k: string) => process.env[k] || undefined;
  const url = g.host ?? (g.socket ? undefined : env('KILN_HOST'));
  const apiKey = env('KILN_API_KEY');
  if (url) return { url, ...(apiKey ? { apiKey } : {}) };
  return { socket: g.socket ?? env('KILN_SOCKET') ?? '/run/kiln/kiln.sock', ...(apiKey ? { apiKey } : {}) };
}

export function clientFrom(cmd: Command): KilnClient {
  return new KilnClient(targetFrom(cmd));
}
