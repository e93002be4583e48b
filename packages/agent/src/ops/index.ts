// The op table: every op of the protocol and the function that serves it.

import type { OpName } from '@kiln/protocol';
import type { OpHandler } from './context.js';
import { dockerReady } from './docker.js';
import { exec, execSignal } from './exec.js';
import { readFile, writeFile } from './file-transfer.js';
import { list, mkdir, remove, rename, stat } from './files.js';
import { network } from './network.js';
import { health } from './health.js';
import { tcpConnect } from './tcp.js';
import { configure, hello } from './system.js';
import { procGet, procList, procRead, procResize, procSignal, procStart, procStdin, procWait } from './processes.js';

export type { AgentConfig, ExecEntry, OpContext, OpHandler } from './context.js';

export const handlers: { [O in OpName]: OpHandler<O> } = {
  hello,
  health,
  'docker.ready': dockerReady,
  exec,
  'exec.signal': execSignal,
  'tcp.connect': tcpConnect,
  'file.write': writeFile,
  'file.read': readFile,
  'file.stat': stat,
  'file.list': list,
  'file.mkdir': mkdir,
  'file.remove': remove,
  'file.rename': rename,
  'sys.configure': configure,
  'sys.network': network,
  'proc.start': procStart,
  'proc.list': procList,
  'proc.get': procGet,
  'proc.read': procRead,
  'proc.stdin': procStdin,
  'proc.signal': procSignal,
  'proc.wait': procWait,
  'proc.resize': procResize,
};
