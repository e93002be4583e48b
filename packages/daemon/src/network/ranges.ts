/** Address ranges the policy treats specially, whatever a sandbox's allow-list says. */
import { type Cidr, parseCidr } from './ipv4.js';

const c = (s: string): Cidr => parseCidr(s) as Cidr;

/** Link-local and cloud metadata endpoints: never reachable, not even with allowPrivate. */
export const NEVER_ALLOWED: readonly Cidr[] = [
  c('169.254.0.0/16'), // link-local; AWS/GCP/Azure/OpenStack metadata at 169.254.169.254
  c('168.63.129.16/32'), // Azure wireserver
  c('100.100.100.200/32'), // Alibaba Cloud metadata
  c('127.0.0.0/8'), // loopback
  c('0.0.0.0/8'),
  c('224.0.0.0/4'), // multicast
  c('240.0.0.0/4'), // reserved, broadcast
];

/** Private and special-purpose ranges: dropped unless the policy's allowPrivate lists them. */
export const PRIVATE_RANGES: readonly Cidr[] = [
  c('10.0.0.0/8'),
  c('100.64.0.0/10'), // carrier-grade NAT
  c('172.16.0.0/12'),
  c('192.0.0.0/24'), // IETF protocol assignments
  c('192.168.0.0/16'),
  c('198.18.0.0/15'), // benchmarking
];
