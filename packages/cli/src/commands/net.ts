/**
 * kiln net — a sandbox's network: show it, change its egress policy while it runs, list its
 * flows and counters, read its resolver's query log. Rules on the command line are
 * `TARGET[:PROTO[:PORTS]]`: TARGET a CIDR (a bare address means /32) or a domain, PROTO
 * tcp|udp|icmp|any, PORTS a comma list of ports or from-to ranges, e.g.
 * `198.51.100.0/24:tcp:80,8000-8100`, `registry.npmjs.org`, `10.1.2.3:udp:53`.
 */
import type { Command } from 'commander';
import { clientFrom } from '../connect.js';
import { fail, printJson, table } from '../output.js';

export interface RuleBody {
  cidr?: string;
  domain?: string;
  protocol?: string;
  ports?: string[];
}

export function parseNetRule(text: string, flag: string): RuleBody {
  const [target, protocol, ports, ...rest] = text.split(':');
  if (!target || rest.length) throw new Error(`${flag} ${JSON.stringify(text)}: expected TARGET[:PROTO[:PORTS]]`);
  const rule: RuleBody = /^[0-9.]+(\/\d+)?$/.test(target) ? { cidr: target.includes('/') ? target : `${target}/32` } : { domain: target };
  if (protocol) rule.protocol = protocol;
  if (ports) rule.ports = ports.split(',').filter(Boolean);
  return rule;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Adds --net/--allow/--deny/--allow-private to a command (kiln create, kiln net set). */
export function addPolicyOptions(cmd: Command): Command {
  return cmd
    .option('--net <PRESET>', 'egress preset: default (DNS + TCP 80/443 to public addresses), locked (DNS + --allow only), none (default: default)')
    .option('--allow <RULE>', 'allow TARGET[:PROTO[:PORTS]] (repeatable)', collect)
    .option('--deny <RULE>', 'deny TARGET[:PROTO[:PORTS]]; beats --allow; a denied domain answers NXDOMAIN (repeatable)', collect)
    .option('--allow-private <CIDR>', 'let the sandbox reach this private range (repeatable)', collect);
}

export interface PolicyOpts {
  net?: string;
  allow?: string[];
  deny?: string[];
  allowPrivate?: string[];
}

/** The policy body from those options, or undefined when none was given. */
export function policyFromOptions(o: PolicyOpts): Record<string, unknown> | undefined {
  if (o.net === undefined && !o.allow && !o.deny && !o.allowPrivate) return undefined;
  return {
    ...(o.net !== undefined ? { preset: o.net } : {}),
    ...(o.allow ? { allow: o.allow.map((r) => parseNetRule(r, '--allow')) } : {}),
    ...(o.deny ? { deny: o.deny.map((r) => parseNetRule(r, '--deny')) } : {}),
    ...(o.allowPrivate ? { allowPrivate: o.allowPrivate } : {}),
  };
}

export interface PatchOpts extends PolicyOpts {
  removeAllow?: string[];
  removeDeny?: string[];
  removeAllowPrivate?: string[];
}

/** The PATCH body of `kiln net set` (without --replace): only what the flags name. */
export function patchFromOptions(o: PatchOpts): Record<string, unknown> {
  const list = <T>(add: T[] | undefined, remove: T[] | undefined) =>
    add || remove ? { ...(add ? { add } : {}), ...(remove ? { remove } : {}) } : undefined;
  const allow = list(o.allow?.map((r) => parseNetRule(r, '--allow')), o.removeAllow?.map((r) => parseNetRule(r, '--remove-allow')));
  const deny = list(o.deny?.map((r) => parseNetRule(r, '--deny')), o.removeDeny?.map((r) => parseNetRule(r, '--remove-deny')));
  const allowPrivate = list(o.allowPrivate, o.removeAllowPrivate);
  const body = { ...(o.net !== undefined ? { preset: o.net } : {}), ...(allow ? { allow } : {}), ...(deny ? { deny } : {}), ...(allowPrivate ? { allowPrivate } : {}) };
  if (!Object.keys(body).length) throw new Error('nothing to change: give --net, --allow, --deny, --allow-private or a --remove-* flag (or --replace)');
  return body;
}

interface PolicyView {
  preset: string;
  allow: Array<{ cidr?: string; domain?: string; protocol: string; ports: string[] }>;
  deny: Array<{ cidr?: string; domain?: string; protocol: string; ports: string[] }>;
  allowPrivate: string[];
}

const ruleText = (r: PolicyView['allow'][number]) => [r.cidr ?? r.domain, r.protocol, r.ports.join(',') || undefined].filter(Boolean).join(':');
const describePolicy = (p: PolicyView) =>
  `preset ${p.preset}; allow [${p.allow.map(ruleText).join(' ')}]; deny [${p.deny.map(ruleText).join(' ')}]; allowPrivate [${p.allowPrivate.join(' ')}]`;

interface FlowRow {
  verdict: string;
  reason: string | null;
  protocol: string;
  src: string;
  srcPort: number | null;
  dst: string;
  dstPort: number | null;
  firstSeen: string;
  lastSeen: string;
  packetsOut: number;
  bytesOut: number;
  packetsIn: number;
  bytesIn: number;
}
interface FlowsResult {
  counters: Record<string, number>;
  flows: FlowRow[];
}

const ep = (addr: string, port: number | null) => (port === null ? addr : `${addr}:${port}`);
const enc = encodeURIComponent;

export function registerNetCommands(program: Command): void {
  const net = program.command('net').description("a sandbox's network: policy, flows, resolver log");

  net
    .command('show <id>')
    .description('addresses, devices and the policy in force')
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      try {
        const v = await clientFrom(cmd).call<Record<string, unknown>>('GET', `/v1/sandboxes/${enc(id)}/network`);
        if (o.json) return printJson(v);
        const p = v.policy as { preset: string; allow: unknown[]; deny: unknown[]; allowPrivate: string[] };
        process.stdout.write(
          table([
            ['address', String(v.address)],
            ['gateway/dns', `${String(v.gateway)} / ${(v.dns as string[]).join(', ')}`],
            ['mac', String(v.mac)],
            ['netns/tap', `${String(v.netns)} / ${String(v.tap)}`],
            ['uplink', String(v.uplink)],
            ['preset', p.preset],
            ['allow', JSON.stringify(p.allow)],
            ['deny', JSON.stringify(p.deny)],
            ['allowPrivate', p.allowPrivate.join(', ') || '-'],
          ]),
        );
      } catch (err) {
        fail(err);
      }
    });

  addPolicyOptions(
    net
      .command('set <id>')
      .description(
        "change a running sandbox's egress policy; only what the flags name changes (preset, rules added or removed), everything else stays; --replace sets the whole policy instead. New connections follow it at once",
      ),
  )
    .option('--remove-allow <RULE>', 'remove allow rules: TARGET alone removes every rule for it, TARGET:PROTO[:PORTS] that exact rule (repeatable)', collect)
    .option('--remove-deny <RULE>', 'remove deny rules, like --remove-allow (repeatable)', collect)
    .option('--remove-allow-private <CIDR>', 'take a private range back (repeatable)', collect)
    .option('--replace', 'replace the whole policy with what --net/--allow/--deny/--allow-private say (omitted parts take their defaults)')
    .option('--json', 'print the resulting policy as JSON')
    .action(async (id: string, o: PatchOpts & { replace?: boolean; json?: boolean }, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        const path = `/v1/sandboxes/${enc(id)}/network/policy`;
        let r: { policy: PolicyView; before: PolicyView };
        if (o.replace) {
          if (o.removeAllow || o.removeDeny || o.removeAllowPrivate) throw new Error('--replace sets the whole policy; it takes no --remove-* flags');
          r = await client.call('PUT', path, policyFromOptions(o) ?? {});
        } else {
          r = await client.call('PATCH', path, patchFromOptions(o));
        }
        if (o.json) printJson(r.policy);
        else process.stdout.write(`policy of ${id}\n  before: ${describePolicy(r.before)}\n  now:    ${describePolicy(r.policy)}\n`);
      } catch (err) {
        fail(err);
      }
    });

  net
    .command('flows <id>')
    .description('byte/packet counters and every accepted or dropped flow (most recent first)')
    .option('--verdict <accept|drop>', 'only these flows')
    .option('--limit <N>', 'at most N flows (default 1000)')
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { verdict?: string; limit?: string; json?: boolean }, cmd: Command) => {
      try {
        const q = new URLSearchParams();
        if (o.verdict) q.set('verdict', o.verdict);
        if (o.limit) q.set('limit', o.limit);
        const r = await clientFrom(cmd).call<FlowsResult>('GET', `/v1/sandboxes/${enc(id)}/network/flows?${q.toString()}`);
        if (o.json) return printJson(r);
        const c = r.counters;
        process.stdout.write(
          `out ${c.packetsOut} pkts ${c.bytesOut} B · in ${c.packetsIn} pkts ${c.bytesIn} B · dropped ${c.packetsDropped} pkts · spoofed ${c.packetsSpoofed} pkts\n`,
        );
        const rows = [['VERDICT', 'REASON', 'PROTO', 'SOURCE', 'DESTINATION', 'PKTS OUT/IN', 'BYTES OUT/IN', 'FIRST', 'LAST']];
        for (const f of r.flows) {
          rows.push([
            f.verdict,
            f.reason ?? '-',
            f.protocol,
            ep(f.src, f.srcPort),
            ep(f.dst, f.dstPort),
            `${f.packetsOut}/${f.packetsIn}`,
            `${f.bytesOut}/${f.bytesIn}`,
            f.firstSeen.slice(11, 19),
            f.lastSeen.slice(11, 19),
          ]);
        }
        process.stdout.write(table(rows));
      } catch (err) {
        fail(err);
      }
    });

  net
    .command('dns <id>')
    .description("the sandbox resolver's query log (the last 64 KiB)")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        const res = await client.check(await client.raw({ method: 'GET', path: `/v1/sandboxes/${enc(id)}/network/dns` }));
        for await (const chunk of res) process.stdout.write(chunk as Buffer);
      } catch (err) {
        fail(err);
      }
    });
}
