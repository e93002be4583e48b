/**
 * The ports API (docs/ports.md): expose, list and unexpose sandbox ports on the proxy, and get
 * a port's URL (signed for a private port). Ownership is checked by the auth hook (`:id`).
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { ErrorBody, ExposePortBody, PortList, PortParams, PortUrl, PortUrlQuery, PortView, SandboxIdParams } from '@kiln/contract';
import { KilnError } from '../../errors.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import type { ProxyService } from '../../proxy/service.js';
import type { ExposedPort } from '../../proxy/port-store.js';

const iso = (p: ExposedPort & { url: string | null }) => ({ ...p, createdAt: new Date(p.createdAt).toISOString() });

export function registerPortRoutes(app: FastifyInstance, manager: SandboxManager, proxy: ProxyService): void {
  const live = (id: string) => {
    const rec = manager.get(id);
    if (rec.state === 'destroyed') throw new KilnError('SANDBOX_NOT_FOUND', `sandbox ${id} not found`);
    return rec;
  };
  app.post<{ Params: Static<typeof SandboxIdParams>; Body: ExposePortBody }>(
    '/v1/sandboxes/:id/ports',
    { schema: { summary: 'Expose a port of the sandbox on the proxy (private unless public: true); exposing it again updates it', params: SandboxIdParams, body: ExposePortBody, response: { 200: PortView, '4xx': ErrorBody } } },
    async (req) => {
      live(req.params.id);
      return iso(proxy.view(req.params.id, proxy.ports.expose(req.params.id, req.body.port, req.body.public === true)));
    },
  );
  app.get<{ Params: Static<typeof SandboxIdParams> }>(
    '/v1/sandboxes/:id/ports',
    { schema: { summary: "The sandbox's exposed ports", params: SandboxIdParams, response: { 200: PortList, '4xx': ErrorBody } } },
    async (req) => {
      live(req.params.id);
      return { ports: proxy.ports.list(req.params.id).map((p) => iso(proxy.view(req.params.id, p))) };
    },
  );
  app.delete<{ Params: Static<typeof PortParams> }>(
    '/v1/sandboxes/:id/ports/:port',
    { schema: { summary: 'Stop exposing a port (open connections stay until they close)', params: PortParams, response: { 204: Type.Null(), '4xx': ErrorBody } } },
    async (req, reply) => {
      live(req.params.id);
      if (!proxy.ports.unexpose(req.params.id, req.params.port)) throw new KilnError('PORT_NOT_FOUND', `sandbox ${req.params.id} does not expose port ${req.params.port}`);
      return reply.status(204).send();
    },
  );
  app.get<{ Params: Static<typeof PortParams>; Querystring: Static<typeof PortUrlQuery> }>(
    '/v1/sandboxes/:id/ports/:port/url',
    { schema: { summary: "A port's URL: plain for a public port, signed (with an expiry) for a private one", params: PortParams, querystring: PortUrlQuery, response: { 200: PortUrl, '4xx': ErrorBody } } },
    async (req) => {
      const { id, port } = req.params;
      live(id);
      const p = proxy.ports.get(id, port);
      if (p?.public) return { url: proxy.url(id, port), public: true, expiresAt: null, token: null };
      const s = proxy.signedUrl(id, port, req.query.ttl, req.query.allPorts === true);
      return { url: s.url, public: false, expiresAt: s.expiresAt, token: s.token };
    },
  );
}
