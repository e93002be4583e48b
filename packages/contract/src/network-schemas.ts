/** The REST contract of sandbox networking (TypeBox; see network/policy.ts for the semantics). */
import { Type, type Static } from '@sinclair/typebox';

const Rule = Type.Object(
  {
    cidr: Type.Optional(Type.String({ description: 'IPv4 CIDR, e.g. 198.51.100.0/24 (exactly one of cidr/domain).' })),
    domain: Type.Optional(Type.String({ description: 'Domain name; covers its subdomains. Addresses are learnt from the sandbox resolver.' })),
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('icmp'), Type.Literal('any')], { description: 'Default tcp for an allowed domain, any otherwise.' })),
    ports: Type.Optional(Type.Array(Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.String({ pattern: '^\\d{1,5}(-\\d{1,5})?$' })]), { description: 'Ports or "from-to"; default every port (an allowed domain: 80 and 443).' })),
  },
  { additionalProperties: false },
);

export const NetworkPolicyBody = Type.Object(
  {
    preset: Type.Optional(Type.Union([Type.Literal('default'), Type.Literal('locked'), Type.Literal('none')], { description: 'default (DNS + TCP 80/443 to public addresses + allow), locked (DNS + allow only), none (nothing). Default default.' })),
    allow: Type.Optional(Type.Array(Rule, { maxItems: 256, description: 'Allowed destinations. Default [].' })),
    deny: Type.Optional(Type.Array(Rule, { maxItems: 256, description: 'Denied destinations (beat allow; denied domains answer NXDOMAIN). Default [].' })),
    allowPrivate: Type.Optional(Type.Array(Type.String(), { maxItems: 64, description: 'Private CIDRs this sandbox may reach. Default [].' })),
  },
  { additionalProperties: false, description: 'Egress policy, enforced on the host. Default {preset: default}.' },
);
export type NetworkPolicyBody = Static<typeof NetworkPolicyBody>;

const RuleRef = Type.Object(
  {
    cidr: Type.Optional(Type.String({ description: 'IPv4 CIDR (exactly one of cidr/domain).' })),
    domain: Type.Optional(Type.String()),
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('icmp'), Type.Literal('any')])),
    ports: Type.Optional(Type.Array(Type.Union([Type.Integer({ minimum: 1, maximum: 65535 }), Type.String({ pattern: '^\\d{1,5}(-\\d{1,5})?$' })]))),
  },
  { additionalProperties: false, description: 'A rule to remove: only cidr/domain removes every rule for that target; with protocol/ports, the rule that normalises to exactly that. It must match.' },
);
const RulesPatch = Type.Object(
  {
    add: Type.Optional(Type.Array(Rule, { maxItems: 256, description: 'Rules to add (one already there is a no-op).' })),
    remove: Type.Optional(Type.Array(RuleRef, { maxItems: 256, description: 'Rules to remove (each must match one in force).' })),
  },
  { additionalProperties: false },
);

export const NetworkPolicyPatchBody = Type.Object(
  {
    preset: Type.Optional(Type.Union([Type.Literal('default'), Type.Literal('locked'), Type.Literal('none')], { description: 'New preset; absent = unchanged.' })),
    allow: Type.Optional(RulesPatch),
    deny: Type.Optional(RulesPatch),
    allowPrivate: Type.Optional(
      Type.Object(
        { add: Type.Optional(Type.Array(Type.String(), { maxItems: 64 })), remove: Type.Optional(Type.Array(Type.String(), { maxItems: 64 })) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, description: 'A change to the egress policy that names only what it changes; everything else stays. A patch that changes nothing is refused.' },
);
export type NetworkPolicyPatchBody = Static<typeof NetworkPolicyPatchBody>;

export const PolicyChangeView = Type.Object({
  policy: Type.Unknown({ description: 'The policy now in force.' }),
  before: Type.Unknown({ description: 'The policy before this change.' }),
});

export const FlowsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Most recent first. Default 1000.' })),
    verdict: Type.Optional(Type.Union([Type.Literal('accept'), Type.Literal('drop')])),
  },
  { additionalProperties: false },
);

const Counters = Type.Object({
  packetsOut: Type.Integer(),
  bytesOut: Type.Integer(),
  packetsIn: Type.Integer(),
  bytesIn: Type.Integer(),
  packetsDropped: Type.Integer(),
  bytesDropped: Type.Integer(),
  packetsSpoofed: Type.Integer(),
});

export const FlowView = Type.Object({
  verdict: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  protocol: Type.String(),
  src: Type.String(),
  srcPort: Type.Union([Type.Integer(), Type.Null()]),
  dst: Type.String(),
  dstPort: Type.Union([Type.Integer(), Type.Null()]),
  firstSeen: Type.String(),
  lastSeen: Type.String(),
  packetsOut: Type.Integer(),
  bytesOut: Type.Integer(),
  packetsIn: Type.Integer(),
  bytesIn: Type.Integer(),
});

export const FlowsView = Type.Object({ counters: Counters, flows: Type.Array(FlowView) });

export const NetworkView = Type.Object({
  uplink: Type.String(),
  netns: Type.String(),
  tap: Type.String(),
  mac: Type.String(),
  address: Type.String(),
  gateway: Type.String(),
  dns: Type.Array(Type.String()),
  block: Type.String(),
  policy: Type.Unknown(),
});
