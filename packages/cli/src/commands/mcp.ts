/** kiln mcp: kiln's MCP server on stdio (@kiln/mcp, loaded only for this command). */
import type { Command } from 'commander';
import { targetFrom } from '../connect.js';
import { fail } from '../output.js';

export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('serve kiln as MCP tools on stdin/stdout (for an agent\'s MCP client config); sandboxes it creates are destroyed when the client disconnects unless created with keep')
    .action(async (_o: unknown, cmd: Command) => {
      try {
        const t = targetFrom(cmd);
        const [{ Kiln }, { runStdio }] = await Promise.all([import('@kiln/sdk'), import('@kiln/mcp')]);
        const kiln = Kiln.connect({ ...(t.url ? { url: t.url } : {}), ...(t.socket ? { socket: t.socket } : {}), ...(t.apiKey ? { apiKey: t.apiKey } : {}), ...(process.env.KILN_CA ? { ca: await import('node:fs').then((fs) => fs.readFileSync(process.env.KILN_CA as string)) } : {}) });
        await runStdio(kiln);
      } catch (err) {
        fail(err);
      }
    });
}
