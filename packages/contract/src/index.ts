/**
 * @kiln/contract — the REST API of kilnd declared once: kilnd validates requests and publishes
 * /openapi.json from these schemas, and clients (the SDK, the CLI) use the same static types.
 */
export * from './schemas.js';
export * from './network-schemas.js';
export * from './error-codes.js';
export * from './process-schemas.js';
export * from './port-schemas.js';
