/** `kiln mcp`: the MCP server on stdin/stdout; the session (and its sandboxes) ends with stdin. */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Kiln } from '@kiln/sdk';
import { createKilnMcpServer } from './server.js';

export async function runStdio(kiln: Kiln): Promise<void> {
  const mcp = createKilnMcpServer(kiln);
  const transport = new StdioServerTransport();
  let ending: Promise<void> | null = null;
  const end = () => {
    ending ??= mcp.close().then(
      (gone) => {
        if (gone.length) process.stderr.write(`kiln mcp: destroyed ${gone.join(', ')}\n`);
        process.exit(0);
      },
      () => process.exit(1),
    );
    return ending;
  };
  process.stdin.once('end', () => void end());
  process.stdin.once('close', () => void end());
  process.once('SIGTERM', () => void end());
  process.once('SIGINT', () => void end());
  await mcp.server.connect(transport);
}
