/**
 * A WebSocket to kilnd (PTY streams). In Node it is a small RFC 6455 client over node:http's
 * upgrade, because it must reach a unix socket and send the API key as a header; in a browser it
 * is the global WebSocket (which cannot send headers: use it behind a proxy that adds the key).
 */
import { fromWire } from './errors.js';
import type { Transport } from './transport.js';
import { builtin } from './builtin.js';
import { readText } from './wire.js';

export interface WsConn {
  send(data: Uint8Array | string): void;
  close(): void;
}

export interface WsHandlers {
  onMessage(data: Uint8Array | string): void;
  onClose(): void;
}

export async function openWs(t: Transport, path: string, h: WsHandlers): Promise<WsConn> {
  if (!t.node) return browserWs(t.target.replace(/^http/, 'ws') + path, h);
  const { socketPath, url, ca } = t.node;
  const https = url?.protocol === 'https:';
  const mod = https ? await builtin<typeof import('node:https')>('node:https') : await builtin<typeof import('node:http')>('node:http');
  const { randomBytes } = await builtin<typeof import('node:crypto')>('node:crypto');
  return new Promise<WsConn>((resolve, reject) => {
    const req = mod.request({
      method: 'GET',
      path: (url && url.pathname !== '/' ? url.pathname.replace(/\/+$/, '') : '') + path,
      headers: { ...t.headers, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') },
      ...(socketPath ? { socketPath } : { host: url?.hostname, port: url?.port || (https ? 443 : 80) }),
      ...(ca ? { ca: typeof ca === 'string' ? ca : Buffer.from(ca) } : {}),
    });
    req.on('error', reject);
    req.on('response', (res) => {
      void readText({ status: res.statusCode ?? 500, header: () => null, body: res, cancel: () => res.destroy() }).then((text) => reject(fromWire(res.statusCode ?? 500, text)), reject);
    });
    req.on('upgrade', (_res, socket, head) => {
      socket.setNoDelay(true);
      const conn: WsConn = {
        send: (data) => {
          if (!socket.destroyed) socket.write(frame(typeof data === 'string' ? 1 : 2, typeof data === 'string' ? Buffer.from(data) : data, randomBytes(4)));
        },
        close: () => {
          if (!socket.destroyed) socket.end(frame(8, Buffer.from([0x03, 0xe8]), randomBytes(4)));
        },
      };
      let buf: Buffer = head.length ? Buffer.from(head) : Buffer.alloc(0);
      let parts: Buffer[] = [];
      let partOp = 0;
      let closed = false;
      const finish = () => {
        if (closed) return;
        closed = true;
        h.onClose();
      };
      const parse = () => {
        for (;;) {
          if (buf.length < 2) return;
          const fin = (buf[0]! & 0x80) !== 0;
          const op = buf[0]! & 0x0f;
          let len = buf[1]! & 0x7f;
          let off = 2;
          if (len === 126) {
            if (buf.length < 4) return;
            len = buf.readUInt16BE(2);
            off = 4;
          } else if (len === 127) {
            if (buf.length < 10) return;
            len = Number(buf.readBigUInt64BE(2));
            off = 10;
          }
          if (buf.length < off + len) return;
          const payload = buf.subarray(off, off + len);
          buf = buf.subarray(off + len);
          if (op === 8) {
            socket.end();
            finish();
            return;
          }
          if (op === 9) socket.write(frame(10, payload, randomBytes(4)));
          if (op === 1 || op === 2 || op === 0) {
            if (op !== 0) partOp = op;
            parts.push(Buffer.from(payload));
            if (fin) {
              const all = Buffer.concat(parts);
              parts = [];
              h.onMessage(partOp === 1 ? all.toString('utf8') : new Uint8Array(all.buffer, all.byteOffset, all.length));
            }
          }
        }
      };
      socket.on('data', (d: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        parse();
      });
      socket.on('close', finish);
      socket.on('error', () => socket.destroy());
      resolve(conn);
      parse();
    });
    req.end();
  });
}

function frame(op: number, payload: Uint8Array, mask: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | op, 0x80 | n]) : n < 65536 ? Buffer.from([0x80 | op, 0x80 | 126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([0x80 | op, 0x80 | 127]), bigLen(n)]);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

function bigLen(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

function browserWs(url: string, h: WsHandlers): Promise<WsConn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const conn: WsConn = { send: (d) => ws.send(d), close: () => ws.close() };
    ws.onopen = () => resolve(conn);
    ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
    ws.onmessage = (ev: MessageEvent) => h.onMessage(typeof ev.data === 'string' ? ev.data : new Uint8Array(ev.data as ArrayBuffer));
    ws.onclose = () => h.onClose();
  });
}
