// Library entry (the guest runs the bundled main.ts instead): lets tests and tools embed a
// session, e.g. over an in-process stream pair.
export { Session, type Transport } from './session.js';
export type { AgentConfig } from './ops/index.js';
export { AGENT_VERSION } from './version.js';
