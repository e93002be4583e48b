/**
 * The test's server inside the guest (run by the guest's own node, /opt/kiln/bin/node): a page
 * and its script (a sub-resource, for the browser), headers echoed back, a streaming echo of
 * the request body, server-sent events released one at a time by GET /next (so a client only
 * gets event n+1 after it saw event n: a buffering proxy would hang), and a WebSocket echo
 * (hand-written framing: text frames up to 64 KiB) that greets first; /bytes/N sends N bytes (bench).
 */
export const GUEST_SERVER = String.raw`
const http = require('http');
const crypto = require('crypto');
const port = Number(process.argv[2]);
let release = null;
const srv = http.createServer((req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end('<!doctype html><title>kiln</title><h1 id="t">hello from the sandbox</h1><p id="s">script not loaded</p><script src="/app.js"></script>');
  }
  if (req.url === '/app.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    return res.end('document.getElementById("s").textContent = "script loaded through the proxy";');
  }
  if (req.url.startsWith('/headers')) {
    res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'app=1; Path=/' });
    return res.end(JSON.stringify({ url: req.url, headers: req.headers, remote: req.socket.remoteAddress }));
  }
  if (req.url === '/echo') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    return req.pipe(res);
  }
  if (req.url.startsWith('/bytes/')) {
    let left = Number(req.url.slice(7));
    const chunk = Buffer.alloc(65536, 120);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
    const pump = () => {
      while (left > 0) {
        const b = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= b.length;
        if (!res.write(b)) return res.once('drain', pump);
      }
      res.end();
    };
    return pump();
  }
  if (req.url === '/next') {
    const r = release; release = null; if (r) r();
    return res.end(r ? 'released' : 'nothing waiting');
  }
  if (req.url === '/sse') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let i = 0;
    const send = () => {
      i++;
      res.write('data: event ' + i + '\n\n');
      if (i === 3) return res.end();
      release = send;
    };
    return send();
  }
  res.writeHead(404); res.end('no such page');
});
srv.on('upgrade', (req, sock) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + '\r\n\r\n');
  const frame = (text) => {
    const p = Buffer.from(text);
    const h = p.length < 126 ? Buffer.from([0x81, p.length]) : Buffer.from([0x81, 126, p.length >> 8, p.length & 255]);
    sock.write(Buffer.concat([h, p]));
  };
  frame('hello from the guest');
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 15;
      let len = buf[1] & 127, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const data = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < data.length; i++) data[i] ^= mask[i % 4];
      buf = buf.subarray(off + 4 + len);
      if (op === 8) { sock.end(Buffer.from([0x88, 0])); return; }
      if (op === 1) frame('echo: ' + data.toString());
    }
  });
  sock.on('error', () => {});
});
srv.listen(port, '127.0.0.1', () => console.log('listening ' + port));
`;
