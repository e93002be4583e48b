export { createKilnMcpServer, SERVER_INFO, type KilnMcp } from './server.js';
export { runStdio } from './stdio.js';
export { McpSession } from './session.js';
export { MAX_OUTPUT_CHARS, truncate } from './tools.js';
