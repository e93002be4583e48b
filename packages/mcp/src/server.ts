/**
 * kiln's MCP server: an McpServer (the official TypeScript SDK) with kiln's tools over one
 * @kiln/sdk client. The transport is the caller's: stdio (`kiln mcp`) or streamable HTTP
 * (kilnd's /mcp, with a client bound to the caller's API key).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Kiln } from '@kiln/sdk';
import { registerTools } from './tools.js';
import { McpSession } from './session.js';

export const SERVER_INFO = { name: 'kiln', version: '0.1.0' };

export interface KilnMcp {
  server: McpServer;
  session: McpSession;
  /** Ends the session: destroys the sandboxes it created (unless kept), closes the server. */
  close(): Promise<string[]>;
}

export function createKilnMcpServer(kiln: Kiln): KilnMcp {
  const server = new McpServer(SERVER_INFO, {
    capabilities: { tools: {} },
    instructions:
      'kiln runs each sandbox as its own microVM with a root shell and a private Docker daemon. Create one with sandbox_create, run commands with run_command, read and write files, start servers with process_start and open them with port_expose. Sandboxes you create are destroyed when this session ends unless you pass keep: true.',
  });
  const session = new McpSession(kiln);
  registerTools(server, kiln, session);
  return {
    server,
    session,
    async close() {
      const gone = await session.end();
      await server.close().catch(() => undefined);
      return gone;
    },
  };
}
