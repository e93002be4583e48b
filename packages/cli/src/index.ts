export { KilnClient, KilnApiError, type SandboxView, type ExecEvent } from './client.js';
export { parseDuration } from './duration.js';
