/** What every envd call gets: the sandbox, its agent, the calling user and the request's headers. */
import type { IncomingHttpHeaders } from 'node:http';
import type { GuestAgent } from '../../sandbox/guest-agent.js';
import type { AuditSink } from '../../audit/guest-records.js';
import type { ConnectStream } from './connect-codec.js';

export interface EnvdCall {
  /** kiln sandbox id (sb-…). */
  sandboxId: string;
  agent: GuestAgent;
  /** The guest account the call runs as. */
  user: string;
  /** The sandbox's default environment (from create), under every process's own envs. */
  env: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** kiln's audit log: process starts and signals, file writes, removals, mkdirs, moves (as kiln's own routes record them). */
  audit: AuditSink;
}

export type UnaryMethod = (call: EnvdCall, msg: Record<string, unknown>) => Promise<unknown>;
export type StreamMethod = (call: EnvdCall, msg: Record<string, unknown>, out: ConnectStream) => Promise<void>;

export interface ServiceMethods {
  unary: Record<string, UnaryMethod>;
  stream: Record<string, StreamMethod>;
}

/** Reads a string field (proto3 JSON: absent = ''). */
export function str(msg: Record<string, unknown>, key: string): string {
  const v = msg[key];
  return typeof v === 'string' ? v : '';
}

/** Reads an object field (absent = {}). */
export function obj(msg: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = msg[key];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** Reads an integer field (proto3 JSON: numbers or decimal strings; absent = undefined). */
export function int(msg: Record<string, unknown>, key: string): number | undefined {
  const v = msg[key];
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}
