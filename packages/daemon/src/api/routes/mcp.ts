/**
 * POST/GET/DELETE /mcp: kiln's MCP server (@kiln/mcp) over streamable HTTP, on the TCP listener
 * (API-key auth, tenant scoped). Each MCP session gets its own server and an SDK client bound
 * to the caller: with the caller's key over kilnd's tenant socket (tenancy/tenant-socket.ts:
 * every tool call is checked like a direct API call), or, for the admin on the unix socket,
 * over the admin socket. A session belongs to the key that opened it (another key gets 404).
 * It ends with DELETE /mcp or after `idleMs` without a request; its sandboxes (those not
 * created with keep) are then destroyed.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Kiln } from '@kiln/sdk';
import { createKilnMcpServer, type KilnMcp } from '@kiln/mcp';
import { tcpOf } from '../../tenancy/principal.js';

export interface McpRouteOptions {
  /** The tenant socket (tenant-scoped requests with the caller's key); null = no TCP listener. */
  tenantSocket: string | null;
  /** The admin unix socket. */
  adminSocket: string;
  /** A session without requests for this long ends. Default 30 min. */
  idleMs?: number;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  mcp: KilnMcp;
  auth: string;
  timer: NodeJS.Timeout | null;
}

const jsonRpcError = (reply: FastifyReply, status: number, message: string) =>
  reply.code(status).send({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });

export function registerMcpRoutes(app: FastifyInstance, o: McpRouteOptions): { closeAll(): Promise<void> } {
  const sessions = new Map<string, Session>();
  const idleMs = o.idleMs ?? 30 * 60_000;

  const end = async (sid: string) => {
    const s = sessions.get(sid);
    if (!s) return;
    sessions.delete(sid);
    if (s.timer) clearTimeout(s.timer);
    await s.mcp.close().catch((err: unknown) => app.log.warn({ err, mcpSession: sid }, 'ending an MCP session failed'));
  };
  const touch = (sid: string, s: Session) => {
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => void end(sid), idleMs);
    s.timer.unref();
  };

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = req.headers.authorization ?? '';
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const s = sessions.get(sid);
      // A session is its key's: another caller cannot tell it from one that never existed.
      if (!s || s.auth !== auth) return jsonRpcError(reply, 404, 'MCP session not found');
      touch(sid, s);
      reply.hijack();
      await s.transport.handleRequest(req.raw, reply.raw, req.body);
      return;
    }
    if (req.method !== 'POST') return jsonRpcError(reply, 400, 'no MCP session: start one with an initialize request (POST)');
    const tenantScoped = tcpOf(req.raw) !== null;
    if (tenantScoped && !o.tenantSocket) return jsonRpcError(reply, 503, 'MCP over TCP needs the tenant socket');
    const key = auth.replace(/^Bearer\s+/i, '');
    const kiln = tenantScoped ? Kiln.connect({ socket: o.tenantSocket as string, apiKey: key }) : Kiln.connect({ socket: o.adminSocket });
    const mcp = createKilnMcpServer(kiln);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        const s: Session = { transport, mcp, auth, timer: null };
        sessions.set(id, s);
        touch(id, s);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) void end(transport.sessionId);
      else void mcp.close();
    };
    await mcp.server.connect(transport);
    reply.hijack();
    await transport.handleRequest(req.raw, reply.raw, req.body);
    if (!transport.sessionId) void mcp.close(); // not an initialize: nothing to keep
  };

  for (const method of ['POST', 'GET', 'DELETE'] as const) {
    app.route({ method, url: '/mcp', schema: { summary: 'MCP server (streamable HTTP): kiln\'s tools for agents; see docs/mcp.md', hide: true }, handler: handle });
  }
  return {
    async closeAll() {
      for (const sid of [...sessions.keys()]) {
        const s = sessions.get(sid);
        sessions.delete(sid);
        if (s?.timer) clearTimeout(s.timer);
        await s?.transport.close().catch(() => undefined);
      }
    },
  };
}
