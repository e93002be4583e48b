/** MCP tools on a whole sandbox: expose a port, change its network policy, snapshot, destroy. */
import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Kiln } from '@kiln/sdk';
import type { McpSession } from './session.js';

const sandboxId = z.string().min(1).describe('The sandbox id (sb-…).');
const ok = (text: string, structured: Record<string, unknown>): CallToolResult => ({ content: [{ type: 'text', text }], structuredContent: structured });
const enc = encodeURIComponent;

export function registerSandboxTools(server: McpServer, kiln: Kiln, session: McpSession, wrap: <A>(fn: (a: A) => Promise<CallToolResult>) => (a: A) => Promise<CallToolResult>): void {
  server.registerTool(
    'port_expose',
    {
      description:
        'Expose a TCP port of a sandbox (a dev server, a notebook) through kilnd\'s sandbox proxy and return the URL to open. Private by default (the URL needs the sandbox\'s access token or an API key); public: true opens it to anyone who has the URL.',
      inputSchema: { sandboxId, port: z.number().int().min(1).max(65535).describe('The port the server listens on inside the sandbox.'), public: z.boolean().optional().describe('Reachable without a token. Default false.') },
    },
    wrap(async (a: { sandboxId: string; port: number; public?: boolean }) => {
      const r = await kiln.request<{ port: number; public: boolean; url: string }>('POST', `/v1/sandboxes/${enc(a.sandboxId)}/ports`, { port: a.port, ...(a.public !== undefined ? { public: a.public } : {}) });
      return ok(`port ${r.port} of ${a.sandboxId} is at ${r.url}${r.public ? ' (public)' : ''}`, { port: r.port, public: r.public, url: r.url });
    }),
  );

  server.registerTool(
    'network_policy_set',
    {
      description:
        'Change a sandbox\'s network egress policy at once (new connections): a preset and the domains it may reach. kilnd refuses what this API key may not do.',
      inputSchema: {
        sandboxId,
        policy: z.enum(['default', 'locked', 'none']).describe('default (DNS + HTTP/HTTPS to public addresses), locked (DNS + the allowed domains only), none (no network).'),
        allowDomains: z.array(z.string().min(1)).max(64).optional().describe('Domains the sandbox may reach (ports 80 and 443), e.g. ["pypi.org", "files.pythonhosted.org"].'),
      },
    },
    wrap(async (a: { sandboxId: string; policy: 'default' | 'locked' | 'none'; allowDomains?: string[] }) => {
      const r = await kiln.request<Record<string, unknown>>('PUT', `/v1/sandboxes/${enc(a.sandboxId)}/network/policy`, { preset: a.policy, allow: (a.allowDomains ?? []).map((domain) => ({ domain })) });
      return ok(`network policy of ${a.sandboxId}: ${a.policy}${a.allowDomains?.length ? ` + ${a.allowDomains.join(', ')}` : ''}`, { sandboxId: a.sandboxId, policy: r });
    }),
  );

  server.registerTool(
    'sandbox_snapshot',
    {
      description: 'Snapshot a sandbox (memory, processes and files) as a named template; sandbox_create with template: NAME starts copies of it.',
      inputSchema: { sandboxId, name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/).describe('Template name: lower-case letters, digits, . _ -') },
    },
    wrap(async (a: { sandboxId: string; name: string }) => {
      const r = await (await kiln.sandboxes.connect(a.sandboxId)).snapshot(a.name);
      return ok(`snapshot of ${a.sandboxId} saved as template ${r.name}`, { template: r.name });
    }),
  );

  server.registerTool(
    'sandbox_destroy',
    { description: 'Destroy a sandbox and everything in it (processes, files, its Docker daemon).', inputSchema: { sandboxId } },
    wrap(async (a: { sandboxId: string }) => {
      await (await kiln.sandboxes.connect(a.sandboxId)).kill();
      session.forget(a.sandboxId);
      return ok(`destroyed ${a.sandboxId}`, { sandboxId: a.sandboxId, destroyed: true });
    }),
  );
}
