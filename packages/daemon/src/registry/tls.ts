/**
 * The registry's TLS: a kiln CA made once per state dir and a server certificate for
 * `registry.kiln.internal` signed by it (openssl, on first start). Each sandbox's dockerd trusts
 * the CA through /etc/docker/certs.d/registry.kiln.internal/ca.crt, written at create: no
 * `insecure-registries`, no dockerd restart, and the guest's image (daemon.json) is untouched.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REGISTRY_HOST = 'registry.kiln.internal';

export interface RegistryTls {
  caCert: string;
  cert: string;
  key: string;
}

export async function ensureRegistryTls(dir: string): Promise<RegistryTls> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (n: string) => join(dir, n);
  if (!existsSync(f('server.crt')) || !existsSync(f('ca.crt')) || !existsSync(f('server.key'))) {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '3650', '-subj', '/CN=kiln registry CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    await run('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', `/CN=${REGISTRY_HOST}`]);
    writeFileSync(f('server.ext'), `subjectAltName=DNS:${REGISTRY_HOST}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n`);
    await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '3650', '-extfile', f('server.ext')]);
    rmSync(f('server.csr'), { force: true });
  }
  return { caCert: readFileSync(f('ca.crt'), 'utf8'), cert: readFileSync(f('server.crt'), 'utf8'), key: readFileSync(f('server.key'), 'utf8') };
}
