/**
 * The web terminal: xterm.js on the PTY WebSocket (GET /v1/sandboxes/:id/pty). A browser
 * cannot set Authorization on a WebSocket, so the key goes as a subprotocol `kiln.key.<key>`
 * beside `kiln.v1` (the one kilnd answers with). Binary frames are terminal bytes; text frames
 * are JSON control (resize out; exit/error in).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { getKey } from './api.js';

export function WebTerminal({ id }: { id: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('connecting…');
  useEffect(() => {
    if (!box.current) return;
    const term = new Terminal({ cols: 100, rows: 24, screenReaderMode: true, fontSize: 14, theme: { background: '#111111', foreground: '#eeeeee' } });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current);
    try {
      fit.fit();
    } catch {
      // not laid out yet: keep 100x24
    }
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({ cols: String(term.cols), rows: String(term.rows), term: 'xterm-256color' });
    const ws = new WebSocket(`${proto}//${location.host}/v1/sandboxes/${id}/pty?${q}`, ['kiln.v1', `kiln.key.${getKey() ?? ''}`]);
    ws.binaryType = 'arraybuffer';
    const enc = new TextEncoder();
    ws.onopen = () => {
      setStatus('connected');
      term.focus();
    };
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        const c = JSON.parse(m.data) as { type: string; exitCode?: number; message?: string; error?: { message?: string } };
        if (c.type === 'exit') setStatus(`the shell exited (${c.exitCode ?? 'signal'})`);
        if (c.type === 'error') setStatus(`error: ${c.message ?? c.error?.message ?? 'unknown'}`);
        return;
      }
      term.write(new Uint8Array(m.data as ArrayBuffer));
    };
    ws.onclose = (e) => setStatus((s) => (s.startsWith('the shell') || s.startsWith('error') ? s : `disconnected${e.reason ? `: ${e.reason}` : ''} (code ${e.code})`));
    ws.onerror = () => setStatus('the terminal could not connect (is the sandbox running?)');
    const input = term.onData((d) => ws.readyState === ws.OPEN && ws.send(enc.encode(d)));
    const resize = term.onResize(({ cols, rows }) => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ type: 'resize', cols, rows })));
    return () => {
      input.dispose();
      resize.dispose();
      ws.close();
      term.dispose();
    };
  }, [id]);
  return (
    <div class="terminal">
      <p role="status" class="term-status">
        Terminal: {status}
      </p>
      <div ref={box} class="xterm-box" role="region" aria-label="Terminal screen" />
    </div>
  );
}
