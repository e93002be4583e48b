/** @kiln/sdk — TypeScript client of kilnd. See README.md. */
export { Kiln, Sandboxes, type ConnectOptions, type CreateSandboxOptions } from './kiln.js';
export { Sandbox, type SandboxInfo, type SandboxEvent } from './sandbox.js';
export { Volumes, type VolumeInfo } from './volumes.js';
export type { ExecOptions, ExecResult } from './exec.js';
export { Files, type DirEntry, type FileInfo, type FileType, type WriteResult } from './files.js';
export { Processes, ProcessHandle, type ProcessInfo, type StartOptions, type ConnectOptions as ProcessConnectOptions, type ExitStatus } from './process.js';
export { Pty, PtyHandle, type PtyOptions } from './pty.js';
export { Ports, type PortUrl, type PortView } from './ports.js';
export { KilnError, errorClassFor, fromWire, knownErrorCodes, type KilnErrorOptions, type KilnErrorClass } from './errors.js';
export * from './error-classes.js';
export { makeTransport, type Transport, type TransportOptions, type HttpRequest, type HttpResponse } from './transport.js';
export { lines, ndjson, readText, readBytes, send, call, fromBase64, toBase64 } from './wire.js';
export { openWs, type WsConn } from './ws.js';
