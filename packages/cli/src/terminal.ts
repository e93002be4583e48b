/**
 * An interactive terminal on a guest PTY (kiln exec -it, kiln shell): the local terminal in raw
 * mode, keystrokes (Ctrl-C included) to the guest, its output to stdout, SIGWINCH → resize,
 * and the exit status back as ours.
 */
import { constants } from 'node:os';
import { Pty, type PtyHandle, type Transport } from '@kiln/sdk';

export interface TerminalOptions {
  cmd?: string;
  user?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Attach to this PTY process instead of starting one. */
  pid?: number;
}

/** Runs the terminal session; resolves with the exit code to exit with. */
export async function runTerminal(t: Transport, id: string, o: TerminalOptions): Promise<number> {
  const stdin = process.stdin;
  const out = process.stdout;
  const size = () => ({ cols: out.columns || 80, rows: out.rows || 24 });
  const onData = (d: Uint8Array) => out.write(d);
  const pty = new Pty(t, id);
  const term: PtyHandle =
    o.pid !== undefined
      ? await pty.connect(o.pid, { onData })
      : await pty.create({ ...size(), onData, term: process.env.TERM || 'xterm-256color', ...(o.cmd ? { cmd: o.cmd } : {}), ...(o.user ? { user: o.user } : {}), ...(o.cwd ? { cwd: o.cwd } : {}), ...(o.env ? { env: o.env } : {}) });
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const onKeys = (d: Buffer) => term.write(d);
  stdin.on('data', onKeys);
  stdin.resume();
  const onResize = () => term.resize(size());
  out.on('resize', onResize); // Node turns SIGWINCH into 'resize' on a TTY stdout
  if (o.pid !== undefined && out.isTTY) onResize();
  try {
    const st = await term.wait();
    return st.exitCode ?? (st.signal ? 128 + ((constants.signals as Record<string, number>)[st.signal] ?? 1) : 1);
  } finally {
    out.off('resize', onResize);
    stdin.off('data', onKeys);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    term.disconnect();
  }
}
