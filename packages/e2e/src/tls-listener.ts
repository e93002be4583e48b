/** A self-signed certificate and a free loopback port for a kilnd TCP listener with TLS (tests, bench). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface TlsListener {
  url: string;
  ca: string;
  certPath: string;
  /** The environment that makes a kilnd serve it (KILN_LISTEN, KILN_TLS_CERT/KEY). */
  env: Record<string, string>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export async function tlsListener(dir: string): Promise<TlsListener> {
  const certPath = join(dir, 'tls-cert.pem');
  const keyPath = join(dir, 'tls-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath], { stdio: 'ignore' });
  const port = await freePort();
  return { url: `https://127.0.0.1:${port}`, ca: readFileSync(certPath, 'utf8'), certPath, env: { KILN_LISTEN: `127.0.0.1:${port}`, KILN_TLS_CERT: certPath, KILN_TLS_KEY: keyPath } };
}
