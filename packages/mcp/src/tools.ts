/**
 * kiln's MCP tools, on the SDK (@kiln/sdk): every tool takes JSON arguments validated by its
 * schema (a bad argument is a tool error naming it) and answers with text content plus
 * structured content. kilnd's errors come back as tool errors "CODE: message" (another tenant's
 * sandbox is SANDBOX_NOT_FOUND, like an id that never existed).
 */
import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Kiln } from '@kiln/sdk';
import type { McpSession } from './session.js';
import { registerSandboxTools } from './sandbox-tools.js';

/** Each of stdout/stderr is cut to this many characters in a result (the tail is kept). */
export const MAX_OUTPUT_CHARS = 32 * 1024;

const sandboxId = z.string().min(1).describe('The sandbox id (sb-…), as sandbox_create returned it.');
const guestPath = z.string().startsWith('/').describe('An absolute path in the guest, e.g. /root/app.py.');

const ok = (text: string, structured: Record<string, unknown>): CallToolResult => ({ content: [{ type: 'text', text }], structuredContent: structured });

function toolError(err: unknown): CallToolResult {
  const e = err as { code?: string; message?: string };
  return { content: [{ type: 'text', text: `${e.code ?? 'ERROR'}: ${e.message ?? String(err)}` }], isError: true };
}

/** Keeps the last `max` characters; says how much was cut. */
export function truncate(s: string, max = MAX_OUTPUT_CHARS): { text: string; truncated: boolean; omittedChars: number } {
  if (s.length <= max) return { text: s, truncated: false, omittedChars: 0 };
  return { text: `[… ${s.length - max} earlier characters omitted …]\n${s.slice(-max)}`, truncated: true, omittedChars: s.length - max };
}

const wrap =
  <A>(fn: (args: A, extra: Extra) => Promise<CallToolResult>) =>
  async (args: A, extra: Extra = {} as Extra): Promise<CallToolResult> => {
    try {
      return await fn(args, extra);
    } catch (err) {
      return toolError(err);
    }
  };

interface Extra {
  signal: AbortSignal;
  _meta?: { progressToken?: string | number };
  sendNotification: (n: { method: 'notifications/progress'; params: { progressToken: string | number; progress: number; message?: string } }) => Promise<void>;
}

export function registerTools(server: McpServer, kiln: Kiln, session: McpSession): void {
  const sb = (id: string) => kiln.sandboxes.connect(id);

  server.registerTool(
    'sandbox_create',
    {
      description:
        'Create a sandbox: a microVM with its own Linux kernel, a root shell and a private Docker daemon. Returns its id. It is destroyed when this MCP session ends unless keep is true.',
      inputSchema: {
        template: z.string().min(1).optional().describe('Start from this named template (e.g. a snapshot). Default: the base image.'),
        memoryMiB: z.number().int().min(256).max(65536).optional().describe('Guest memory in MiB. Default 1024.'),
        vcpus: z.number().int().min(1).max(16).optional().describe('Virtual CPUs. Default 2.'),
        policy: z.enum(['default', 'locked', 'none']).optional().describe('Network egress preset: default (DNS + HTTP/HTTPS to public addresses), locked (DNS only), none. Default default.'),
        allowDomains: z.array(z.string().min(1)).max(64).optional().describe('Domains the sandbox may reach on 80/443 in addition to the preset.'),
        timeoutSeconds: z.number().int().min(0).max(7 * 24 * 3600).optional().describe('Lifetime in seconds (0 = none). Default 3600.'),
        keep: z.boolean().optional().describe('Keep the sandbox after this MCP session ends. Default false.'),
      },
    },
    wrap(async (a: { template?: string; memoryMiB?: number; vcpus?: number; policy?: 'default' | 'locked' | 'none'; allowDomains?: string[]; timeoutSeconds?: number; keep?: boolean }) => {
      const network = a.policy || a.allowDomains ? { ...(a.policy ? { preset: a.policy } : {}), ...(a.allowDomains ? { allow: a.allowDomains.map((domain) => ({ domain })) } : {}) } : undefined;
      const s = await kiln.sandboxes.create({
        ...(a.template ? { template: a.template } : {}),
        ...(a.memoryMiB ? { memoryMiB: a.memoryMiB } : {}),
        ...(a.vcpus ? { vcpus: a.vcpus } : {}),
        ...(a.timeoutSeconds !== undefined ? { timeoutMs: a.timeoutSeconds * 1000 } : {}),
        ...(network ? { network } : {}),
        labels: { 'mcp-session': session.id, ...(a.keep ? { 'mcp-keep': 'true' } : {}) },
      });
      session.created(s.id, a.keep ?? false);
      return ok(`created sandbox ${s.id} (${s.info.state})${a.keep ? '' : '; it is destroyed when this MCP session ends'}`, { sandboxId: s.id, state: s.info.state, keep: a.keep ?? false });
    }),
  );

  server.registerTool(
    'sandbox_list',
    { description: 'List the sandboxes this API key can see, with their state and labels.', inputSchema: {} },
    wrap(async () => {
      const list = await kiln.sandboxes.list();
      const rows = list.map((s) => ({ sandboxId: s.id, state: s.state, labels: s.spec.labels, createdAt: s.createdAt, expiresAt: s.expiresAt }));
      return ok(rows.length ? rows.map((r) => `${r.sandboxId} ${r.state}`).join('\n') : 'no sandboxes', { sandboxes: rows });
    }),
  );

  server.registerTool(
    'run_command',
    {
      description:
        'Run a shell command in a sandbox (/bin/sh -c) and wait for it. Output is streamed as progress notifications when the client asks for progress; the result has the exit code, stdout and stderr (each cut to its last 32 KiB, marked when cut).',
      inputSchema: {
        sandboxId,
        command: z.string().min(1).describe('The command line, e.g. "uname -a" or "cd /root/app && npm test".'),
        cwd: guestPath.optional().describe('Working directory. Default the user\'s home.'),
        user: z.string().min(1).optional().describe('Guest user: root (default) or user.'),
        timeoutSeconds: z.number().int().min(1).max(24 * 3600).optional().describe('Kill the command after this long. Default none.'),
      },
    },
    wrap(async (a: { sandboxId: string; command: string; cwd?: string; user?: string; timeoutSeconds?: number }, extra) => {
      const s = await sb(a.sandboxId);
      const token = extra._meta?.progressToken;
      let n = 0;
      const progress = (chunk: string) => {
        if (token === undefined) return;
        void extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: ++n, message: chunk } }).catch(() => undefined);
      };
      const r = await s.exec(a.command, {
        onStdout: progress,
        onStderr: progress,
        signal: extra.signal,
        ...(a.cwd ? { cwd: a.cwd } : {}),
        ...(a.user ? { user: a.user } : {}),
        ...(a.timeoutSeconds ? { timeoutMs: a.timeoutSeconds * 1000 } : {}),
      });
      const out = truncate(r.stdout);
      const err = truncate(r.stderr);
      const status = r.timedOut ? `timed out after ${a.timeoutSeconds} s` : r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`;
      const text = [`${status} (${r.durationMs} ms)`, out.text && `--- stdout${out.truncated ? ' (truncated)' : ''} ---\n${out.text}`, err.text && `--- stderr${err.truncated ? ' (truncated)' : ''} ---\n${err.text}`].filter(Boolean).join('\n');
      return {
        content: [{ type: 'text', text }],
        structuredContent: { exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, durationMs: r.durationMs, stdout: out.text, stderr: err.text, stdoutTruncated: out.truncated, stderrTruncated: err.truncated },
      };
    }),
  );

  registerProcessTools(server, sb);
  registerFileTools(server, sb);
  registerSandboxTools(server, kiln, session, wrap);
}

type Open = (id: string) => ReturnType<Kiln['sandboxes']['connect']>;

function registerProcessTools(server: McpServer, sb: Open): void {
  server.registerTool(
    'process_start',
    {
      description: 'Start a background process (a server, a watcher) that outlives this call; returns its pid. Read its output with process_output, stop it with process_kill.',
      inputSchema: { sandboxId, command: z.string().min(1).describe('The command line (/bin/sh -c).'), cwd: guestPath.optional().describe('Working directory.'), tag: z.string().max(64).optional().describe('A name to find it by.') },
    },
    wrap(async (a: { sandboxId: string; command: string; cwd?: string; tag?: string }) => {
      const s = await sb(a.sandboxId);
      const h = await s.process.start({ cmd: a.command, ...(a.cwd ? { cwd: a.cwd } : {}), ...(a.tag ? { tag: a.tag } : {}) });
      h.disconnect();
      return ok(`started process ${h.info.pid}`, { pid: h.info.pid });
    }),
  );
  server.registerTool(
    'process_list',
    { description: 'List the background processes of a sandbox (running ones, and exited ones kept for a while).', inputSchema: { sandboxId } },
    wrap(async (a: { sandboxId: string }) => {
      const ps = await (await sb(a.sandboxId)).process.list();
      const rows = ps.map((p) => ({ pid: p.pid, tag: p.tag, argv: p.argv, state: p.state, exitCode: p.exitCode }));
      return ok(rows.length ? rows.map((p) => `${p.pid} ${p.state}${p.exitCode !== null ? ` (exit ${p.exitCode})` : ''} ${p.argv.join(' ')}`).join('\n') : 'no processes', { processes: rows });
    }),
  );
  server.registerTool(
    'process_output',
    {
      description: 'Read a background process\'s output from a byte offset (0 = the start of what is kept). Returns the text, the offset to read from next, and its exit status once it exited.',
      inputSchema: { sandboxId, pid: z.number().int().min(1).describe('The process id from process_start.'), offset: z.number().int().min(0).optional().describe('Byte offset to read from (nextOffset of the previous read). Default 0.') },
    },
    wrap(async (a: { sandboxId: string; pid: number; offset?: number }) => {
      const s = await sb(a.sandboxId);
      const info = await s.process.get(a.pid);
      const r = await s.process.output(a.pid, a.offset ?? 0);
      const out = truncate(r.stdout + r.stderr);
      const exited = info.state === 'exited';
      const status = exited ? `\n[exited: ${info.exitCode ?? info.signal}]` : '';
      return ok((out.text || '(no output)') + status, { output: out.text, truncated: out.truncated, droppedBytes: r.dropped, nextOffset: info.outputBytes, exited, exitCode: info.exitCode });
    }),
  );
  server.registerTool(
    'process_kill',
    { description: 'Kill a background process (SIGKILL to its process group).', inputSchema: { sandboxId, pid: z.number().int().min(1).describe('The process id.') } },
    wrap(async (a: { sandboxId: string; pid: number }) => {
      await (await sb(a.sandboxId)).process.kill(a.pid);
      return ok(`killed process ${a.pid}`, { pid: a.pid });
    }),
  );
}

function registerFileTools(server: McpServer, sb: Open): void {
  server.registerTool(
    'file_read',
    { description: 'Read a text file from a sandbox (UTF-8; cut to its last 32 KiB, marked when cut).', inputSchema: { sandboxId, path: guestPath } },
    wrap(async (a: { sandboxId: string; path: string }) => {
      const t = truncate(await (await sb(a.sandboxId)).files.read(a.path));
      return ok(t.text, { path: a.path, content: t.text, truncated: t.truncated });
    }),
  );
  server.registerTool(
    'file_write',
    {
      description: 'Write a text file in a sandbox (created or replaced; missing parent directories are created).',
      inputSchema: { sandboxId, path: guestPath, content: z.string().describe('The file\'s new content (UTF-8).'), mode: z.string().regex(/^0?[0-7]{3,4}$/).optional().describe('Octal permissions, e.g. 0755. Default 0644.') },
    },
    wrap(async (a: { sandboxId: string; path: string; content: string; mode?: string }) => {
      const r = await (await sb(a.sandboxId)).files.write(a.path, a.content, { parents: true, ...(a.mode ? { mode: parseInt(a.mode, 8) } : {}) });
      return ok(`wrote ${r.bytes} bytes to ${a.path}`, { path: a.path, bytes: r.bytes, sha256: r.sha256 });
    }),
  );
  server.registerTool(
    'file_list',
    { description: 'List a directory in a sandbox (names, types, sizes).', inputSchema: { sandboxId, path: guestPath } },
    wrap(async (a: { sandboxId: string; path: string }) => {
      const entries = await (await sb(a.sandboxId)).files.list(a.path);
      return ok(entries.map((e) => `${e.type === 'dir' ? 'd' : '-'} ${String(e.size).padStart(10)} ${e.name}`).join('\n') || '(empty)', { path: a.path, entries });
    }),
  );
}
