export * from './errors.js';
export * from './frame.js';
export * from './flow.js';
export * from './messages.js';
export { PTY_LIMITS, PROC_READ_MAX_BYTES, PROC_STDIN_MAX_BYTES } from './proc-messages.js';
export { RpcChannel, type ChannelOptions, type ChannelStats, type RequestHooks } from './channel.js';
export { AgentClient, type AgentClientOptions, type ConnectOptions, type ExecHandle, type ExecHandlers, type TcpHandle, type WriteFileOptions } from './client.js';
