/** Sandbox networking: inspect, change the policy live, flows and counters, resolver log. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { auditDetail } from '../../audit/api-hook.js';
import type { PolicyInput } from '../../network/policy.js';
import type { PolicyPatch } from '../../network/policy-patch.js';
import type { Static } from '@sinclair/typebox';
import { KilnError } from '../../errors.js';
import type { NetworkService } from '../../network/service.js';
import { formatUplink } from '../../network/uplink.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { ErrorBody, SandboxIdParams, FlowsQuery, FlowsView, NetworkPolicyBody, NetworkPolicyPatchBody, NetworkView, PolicyChangeView } from '@kiln/contract';

type IdParams = Static<typeof SandboxIdParams>;

export function registerNetworkRoutes(app: FastifyInstance, manager: SandboxManager, network: NetworkService | null): void {
  const netOf = (id: string) => {
    const rec = manager.get(id);
    if (!network) throw new KilnError('NETWORK_DISABLED', 'kilnd runs without sandbox networking', { status: 404 });
    const net = network.get(rec.id);
    if (!net || rec.state === 'stopping' || rec.state === 'destroyed') {
      throw new KilnError('NETWORK_NOT_FOUND', `sandbox ${id} has no network (state ${rec.state})`, { status: 409 });
    }
    return { net, network };
  };

  app.get<{ Params: IdParams }>(
    '/v1/sandboxes/:id/network',
    { schema: { summary: 'The sandbox network: addresses, devices, policy', params: SandboxIdParams, response: { 200: NetworkView, '4xx': ErrorBody } } },
    async (req) => {
      const { net, network: svc } = netOf(req.params.id);
      return {
        uplink: formatUplink(svc.uplink),
        netns: net.names.netns,
        tap: net.names.tap,
        mac: net.mac,
        address: net.guest.address,
        gateway: net.guest.gateway,
        dns: net.guest.dns,
        block: net.addresses.block,
        policy: net.policy,
      };
    },
  );

  const change = async (req: FastifyRequest<{ Params: IdParams }>, how: { replace: NetworkPolicyBody } | { patch: NetworkPolicyPatchBody }) => {
    const { net, network: svc } = netOf(req.params.id);
    const c = await svc.changePolicy(net.sandboxId, how as { replace: PolicyInput } | { patch: PolicyPatch });
    auditDetail(req, { how: c.how, before: c.before, after: c.after });
    return { policy: c.after, before: c.before };
  };

  app.put<{ Params: IdParams; Body: NetworkPolicyBody }>(
    '/v1/sandboxes/:id/network/policy',
    {
      schema: {
        summary: 'Replace the egress policy of a sandbox as a whole (what the body leaves out takes its default); takes effect at once for new connections',
        params: SandboxIdParams,
        body: NetworkPolicyBody,
        response: { 200: PolicyChangeView, '4xx': ErrorBody },
      },
    },
    async (req) => change(req, { replace: req.body }),
  );

  app.patch<{ Params: IdParams; Body: NetworkPolicyPatchBody }>(
    '/v1/sandboxes/:id/network/policy',
    {
      schema: {
        summary: 'Change the egress policy of a sandbox: only what the patch names (preset, rules added or removed); takes effect at once for new connections',
        params: SandboxIdParams,
        body: NetworkPolicyPatchBody,
        response: { 200: PolicyChangeView, '4xx': ErrorBody },
      },
    },
    async (req) => change(req, { patch: req.body }),
  );

  app.get<{ Params: IdParams; Querystring: Static<typeof FlowsQuery> }>(
    '/v1/sandboxes/:id/network/flows',
    { schema: { summary: 'Byte/packet counters and every accepted or dropped flow', params: SandboxIdParams, querystring: FlowsQuery, response: { 200: FlowsView, '4xx': ErrorBody } } },
    async (req) => {
      const { net, network: svc } = netOf(req.params.id);
      const r = await svc.flows(net.sandboxId, { ...(req.query.limit ? { limit: req.query.limit } : {}), ...(req.query.verdict ? { verdict: req.query.verdict } : {}) });
      return {
        counters: r.counters,
        flows: r.flows.map(({ firstSeenMs, lastSeenMs, ...f }) => ({ ...f, firstSeen: new Date(firstSeenMs).toISOString(), lastSeen: new Date(lastSeenMs).toISOString() })),
      };
    },
  );

  app.get<{ Params: IdParams }>(
    '/v1/sandboxes/:id/network/dns',
    { schema: { summary: 'The sandbox resolver query log (text, the last 64 KiB)', params: SandboxIdParams } },
    async (req, reply) => {
      const { net, network: svc } = netOf(req.params.id);
      return reply.type('text/plain; charset=utf-8').send(await svc.dnsLog(net.sandboxId));
    },
  );
}
