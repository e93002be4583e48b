/**
 * Personalizing a clone through its org.kiln.guestctl port: requests go straight to the
 * guest's resident kiln-guestctl helper (packages/agent/native/kiln-guestctl.c), a few
 * system calls each, with no Node.js code of the agent on the path. Right after a restore TCG
 * must translate every guest instruction anew, so the less guest code runs, the sooner the
 * clone is ready. Line protocol: one request per line, one "ok[ VALUE]" / "err ERRNO TEXT" reply.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { KilnError } from '../errors.js';
import { LineSplitter } from '../logs/lines.js';
import type { GuestNetConfig } from '../network/guest.js';

/** A clock pass whose round trip is below this is accurate enough; otherwise it is repeated. */
const CLOCK_GOOD_RTT_MS = 5;
const CLOCK_MAX_PASSES = 3;

export class GuestCtlChannel {
  private waiting: Array<{ resolve: (line: string) => void; reject: (err: Error) => void }> = [];
  private failed: Error | null = null;

  private constructor(private readonly sock: Socket) {
    // The replies come from the guest: split with the bound and sanitizing of guest log lines.
    const lines = new LineSplitter((line) => this.waiting.shift()?.resolve(line));
    sock.on('data', (chunk: Buffer) => lines.push(chunk));
    const fail = (err: Error) => {
      this.failed ??= err;
      for (const w of this.waiting.splice(0)) w.reject(this.failed);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new KilnError('PERSONALIZE_FAILED', 'the guestctl channel closed')));
  }

  static connect(path: string, timeoutMs: number): Promise<GuestCtlChannel> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new KilnError('PERSONALIZE_FAILED', `no connection to ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new GuestCtlChannel(sock));
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(new KilnError('PERSONALIZE_FAILED', `cannot connect to ${path}: ${err.message}`));
      });
    });
  }

  /** Sends the requests at once (pipelined) and returns the replies' values; throws on the first error. */
  async send(requests: string[], timeoutMs: number): Promise<string[]> {
    if (this.failed) throw this.failed;
    const replies = requests.map(
      () => new Promise<string>((resolve, reject) => this.waiting.push({ resolve, reject })),
    );
    this.sock.write(requests.map((r) => `${r}\n`).join(''));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KilnError('PERSONALIZE_FAILED', `guestctl did not answer "${requests[0]?.split(' ')[0]}" within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const lines = await Promise.race([Promise.all(replies), timeout]);
      return lines.map((line, i) => {
        if (line === 'ok' || line.startsWith('ok ')) return line.slice(3);
        // The guest answered, with an error: not a channel problem that another path could avoid.
        throw new KilnError('GUEST_CTL_ERROR', `guest: ${requests[i]?.split(' ')[0]}: ${line.replace(/^err \d+ /, '')}`);
      });
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface PersonalizeResult {
  /** Round trip of the clock pass that was kept (its error bound), ms. */
  clockRttMs: number;
  clockPasses: number;
  /** The NIC configured, when there was a network. */
  nic: string | null;
}

/** What the helper runs to warm the exec path of a restored guest. */
const WARM_COMMAND = '/bin/true';

/** dockerd's API socket in the guest (the image's default). */
export const GUEST_DOCKER_SOCKET = '/run/docker.sock';

export interface GuestCtlSession {
  /** The channel's socket is open (requests may still wait for the guest). */
  connected: Promise<void>;
  /** The guest made unique and current. */
  personalized: Promise<PersonalizeResult>;
  /** dockerd answered its ping (asked after personalizing and the warm-up, on the same channel). */
  dockerReady: Promise<{ waitedMs: number }>;
}

/**
 * Makes a guest unique and current: wall clock (first: anything before it only adds to its
 * error), credited entropy, hostname, machine id, and with a network the NIC's MAC, address,
 * route and resolver (all idempotent); then waits for dockerd. Neither promise rejects
 * unhandled; the channel closes when both are settled.
 */
export function startGuestCtlSession(
  path: string,
  o: { hostname: string; net: GuestNetConfig | null; timeoutMs: number; dockerTimeoutMs: number; warm?: boolean },
): GuestCtlSession {
  const channel = GuestCtlChannel.connect(path, o.timeoutMs);
  const personalized = channel.then((ch) => personalize(ch, o));
  // With warm, a process is started and waited for while the create's answer travels and the
  // first exec arrives: TCG translates fork/exec and the dynamic loader once, on the other
  // vCPU, before that exec needs them. Its outcome does not matter.
  const warmed = o.warm
    ? personalized.then(() => channel).then((ch) => ch.send([`warm ${WARM_COMMAND}`], o.timeoutMs).catch(() => undefined))
    : personalized;
  const dockerReady = warmed
    .then(() => channel)
    .then((ch) => ch.send([`docker-ping ${GUEST_DOCKER_SOCKET} ${o.dockerTimeoutMs}`], o.dockerTimeoutMs + o.timeoutMs))
    .then(([waited]) => ({ waitedMs: Number(waited) }));
  void dockerReady.then(
    () => channel.then((ch) => ch.close()),
    () => channel.then((ch) => ch.close(), () => undefined),
  );
  personalized.catch(() => undefined);
  dockerReady.catch(() => undefined);
  const connected = channel.then(() => undefined);
  connected.catch(() => undefined);
  return { connected, personalized, dockerReady };
}

async function personalize(ch: GuestCtlChannel, o: { hostname: string; net: GuestNetConfig | null; timeoutMs: number }): Promise<PersonalizeResult> {
  let rtt = Infinity;
  let passes = 0;
  while (passes < CLOCK_MAX_PASSES && rtt >= CLOCK_GOOD_RTT_MS) {
    const ns = BigInt(Date.now()) * 1_000_000n;
    const t0 = performance.now();
    await ch.send([`clock ${ns / 1_000_000_000n} ${ns % 1_000_000_000n}`], o.timeoutMs);
    rtt = performance.now() - t0;
    passes++;
  }
  const requests = [`entropy ${randomBytes(64).toString('hex')}`, `hostname ${o.hostname}`, `machine-id ${randomBytes(16).toString('hex')}`];
  const net = o.net;
  if (net) {
    const [addr, prefix = '32'] = net.address.split('/');
    requests.push('nic 10000', 'link - down', `mac - ${net.mac}`, 'mtu - 1500', `addr - ${addr} ${prefix}`, 'link - up');
    if (net.gateway) requests.push(`route-default ${net.gateway} -`);
    if (net.dns.length > 0) requests.push(`resolv ${net.dns.join(' ')}`);
  }
  const values = await ch.send(requests, o.timeoutMs + (net ? 10_000 : 0));
  const nicAt = requests.findIndex((r) => r.startsWith('nic '));
  return { clockRttMs: Math.round(rtt * 10) / 10, clockPasses: passes, nic: nicAt >= 0 ? (values[nicAt] ?? null) : null };
}
