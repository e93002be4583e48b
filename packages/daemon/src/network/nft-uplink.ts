/**
 * The per-sandbox table in the uplink namespace (`inet kiln_<hex>`; the root namespace when
 * the uplink is the host). It keeps sandboxes apart at the uplink too, and with a host uplink
 * it stops anything from the sandbox reaching the host itself (only the resolver's upstream
 * queries pass) and masquerades the sandbox's block behind the host's address.
 */
import type { NetNames } from './names.js';

export interface UplinkTableParams {
  names: NetNames;
  /** The sandbox's /29 block. */
  block: string;
  /** The sandbox end of the veth (source of the resolver's upstream queries). */
  sandboxVeth: string;
  dnsUpstream: string[];
  /** Host uplink: guard the host's input and masquerade. */
  host: boolean;
}

export function renderUplinkTable(p: UplinkTableParams): string {
  const t = p.names.table;
  const kv = JSON.stringify(p.names.vethUplink);
  const lines = [
    `table inet ${t} {`,
    '  chain forward_ { type filter hook forward priority -10; policy accept;',
    `    iifname ${kv} oifname "kv*" drop`,
    `    oifname ${kv} ip saddr != ${p.block} ct state new drop`,
    '  }',
  ];
  if (p.host) {
    lines.push(
      '  chain input_ { type filter hook input priority -10; policy accept;',
      ...(p.dnsUpstream.length
        ? [`    iifname ${kv} ip saddr ${p.sandboxVeth} ip daddr { ${p.dnsUpstream.join(', ')} } meta l4proto { udp, tcp } th dport 53 accept`]
        : []),
      `    iifname ${kv} drop`,
      '  }',
      '  chain postrouting_ { type nat hook postrouting priority 100; policy accept;',
      `    ip saddr ${p.block} oifname != "kv*" masquerade`,
      '  }',
    );
  }
  lines.push('}', '');
  return lines.join('\n');
}
