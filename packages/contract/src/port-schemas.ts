/** The ports API (docs/ports.md): which sandbox ports the proxy serves, and their URLs. */
import { Type, type Static } from '@sinclair/typebox';

export const PortNumber = Type.Integer({ minimum: 1, maximum: 65535 });

export const ExposePortBody = Type.Object(
  {
    port: PortNumber,
    public: Type.Optional(Type.Boolean({ description: 'Anyone may open it, no token needed. Default false (the access token, a signed URL or a tenant key is needed).' })),
  },
  { additionalProperties: false },
);
export type ExposePortBody = Static<typeof ExposePortBody>;

export const PortView = Type.Object({
  port: Type.Integer(),
  public: Type.Boolean(),
  url: Type.Union([Type.String(), Type.Null()], { description: "The port's URL on the proxy (host-name form); null when kilnd runs no proxy listener." }),
  createdAt: Type.String(),
});
export type PortView = Static<typeof PortView>;

export const PortList = Type.Object({ ports: Type.Array(PortView) });
export type PortList = Static<typeof PortList>;

export const PortParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }), port: Type.Integer({ minimum: 1, maximum: 65535 }) });

export const PortUrlQuery = Type.Object(
  {
    ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 24 * 3600, description: 'Seconds the signed URL is valid (default 86400).' })),
    allPorts: Type.Optional(Type.Boolean({ description: 'Sign for every port of the sandbox, not just this one.' })),
  },
  { additionalProperties: false },
);

export const PortUrl = Type.Object({
  url: Type.Union([Type.String(), Type.Null()], { description: 'The URL to open: plain for a public port, signed (…?kiln_sig=…) for a private one. Null without a proxy listener.' }),
  public: Type.Boolean(),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  token: Type.Union([Type.String(), Type.Null()], { description: 'The signature alone (the kiln_sig query parameter), for other routing forms.' }),
});
export type PortUrl = Static<typeof PortUrl>;
