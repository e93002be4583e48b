/**
 * An MCP session's sandboxes: each one it creates is labelled `mcp-session=<id>` and destroyed
 * when the session ends (the stdio client exits, the HTTP session is deleted or expires) unless
 * it was created with keep: true.
 */
import { randomBytes } from 'node:crypto';
import type { Kiln } from '@kiln/sdk';

export class McpSession {
  readonly id = `mcp-${randomBytes(8).toString('hex')}`;
  private readonly owned = new Map<string, { keep: boolean }>();
  private ended: Promise<string[]> | null = null;

  constructor(private readonly kiln: Kiln) {}

  created(id: string, keep: boolean): void {
    this.owned.set(id, { keep });
  }

  forget(id: string): void {
    this.owned.delete(id);
  }

  /** Destroys the sandboxes this session created and did not keep; returns their ids. Once. */
  end(): Promise<string[]> {
    this.ended ??= (async () => {
      const gone: string[] = [];
      for (const [id, o] of this.owned) {
        if (o.keep) continue;
        try {
          await (await this.kiln.sandboxes.connect(id)).kill();
          gone.push(id);
        } catch {
          // already gone
        }
      }
      this.owned.clear();
      return gone;
    })();
    return this.ended;
  }
}
