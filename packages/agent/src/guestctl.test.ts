// The resident helper (native/kiln-guestctl.c, built by `npm run build`) driven through the
// agent's GuestCtl, on the host. Only requests that change nothing on the host run here (bad
// input, pings, dockerd's ping against a stand-in socket); the system calls themselves are
// proven in real guests (e2e template tests: clock, hostname, machine id, address per clone).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { GuestCtl } from './guestctl.js';

const BINARY = fileURLToPath(new URL('../dist/kiln-guestctl', import.meta.url));

describe('kiln-guestctl', { skip: existsSync(BINARY) ? false : `${BINARY} not built (npm run build)` }, () => {
  let ctl: GuestCtl;
  let dir: string;
  before(async () => {
    ctl = new GuestCtl(BINARY);
    dir = await mkdtemp(join(tmpdir(), 'kiln-guestctl-'));
  });
  after(async () => {
    ctl.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers in order and names what was wrong with a request', async () => {
    await ctl.call('ping');
    const cases: Array<[string, RegExp]> = [
      ['clock 12x 0', /clock: bad seconds/],
      ['clock 1 1000000000', /clock: bad nanoseconds/],
      ['entropy abc', /entropy: 1 to 4096 bytes of hex/],
      ['entropy zz', /entropy: not hex/],
      ['hostname bad_name!', /hostname: bad hostname/],
      ['machine-id 1234', /machine-id: 32 hex digits/],
      ['mac eth0 not-a-mac', /mac: bad MAC address/],
      ['addr eth0 300.1.1.1 24', /addr: bad IPv4 address/],
      ['addr eth0 10.0.0.1 33', /addr: bad prefix length/],
      ['resolv 1.2.3', /resolv: bad nameserver address/],
      ['link kilnnosuch0 up', /link: SIOCGIFFLAGS: No such device/],
      ['link kiln-name-too-long0 up', /link: bad interface name/],
      ['frobnicate', /frobnicate: unknown request/],
    ];
    // Pipelined: every reply goes to its own request.
    const results = await Promise.allSettled(cases.map(([req]) => ctl.call(req)));
    results.forEach((r, i) => {
      assert.equal(r.status, 'rejected', cases[i]?.[0]);
      assert.match(String((r as PromiseRejectedResult).reason.message), cases[i]?.[1] as RegExp);
    });
    await ctl.call('ping');
  });

  it('skips an overlong request and keeps serving', async () => {
    await assert.rejects(ctl.call(`entropy ${'a'.repeat(20_000)}`), /request too long/);
    await ctl.call('ping');
  });

  it("waits for dockerd's ping to answer 200 and reports how long it waited", async () => {
    const sock = join(dir, 'docker.sock');
    await assert.rejects(ctl.call(`docker-ping ${sock} 200`), /dockerd did not answer on .* within 200 ms/);
    const server = createServer((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK')));
    setTimeout(() => server.listen(sock), 300);
    try {
      const t0 = Date.now();
      const waited = Number(await ctl.callValue(`docker-ping ${sock} 5000`));
      assert.ok(waited >= 200 && waited <= Date.now() - t0 + 5, `waited ${waited} ms`);
    } finally {
      server.close();
    }
  });

  it('warm runs a program and waits for it; a failing one is an error', async () => {
    assert.match(await ctl.callValue('warm /bin/true'), /^\d+$/);
    await assert.rejects(ctl.call('warm /bin/false'), /warm: \/bin\/false did not exit 0/);
    await assert.rejects(ctl.call('warm true'), /usage: warm \/ABSOLUTE\/PATH/);
  });

  it('is restarted after it dies', async () => {
    ctl.stop();
    await ctl.call('ping');
  });
});
