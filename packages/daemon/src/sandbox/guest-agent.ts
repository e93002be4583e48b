/**
 * What the manager needs from a connected guest agent. The real implementation is
 * @kiln/protocol's AgentClient; unit tests substitute a fake.
 */
import type { AgentClient } from '@kiln/protocol';

export type GuestAgent = Pick<
  AgentClient,
  'health' | 'dockerReady' | 'exec' | 'tcpConnect' | 'proc' | 'writeFile' | 'readFile' | 'stat' | 'list' | 'mkdir' | 'remove' | 'rename' | 'configure' | 'network' | 'close' | 'once'
>;

export type ConnectAgent = (socketPath: string, opts: { timeoutMs: number; signal?: AbortSignal; helloIntervalMs?: number; onSocketOpen?: () => void }) => Promise<GuestAgent>;

/** The guest image files a VM boots from (see image/). */
export interface GuestImage {
  hash: string;
  kernel: string;
  initrd: string;
  rootfs: string;
  cmdline: string;
}
