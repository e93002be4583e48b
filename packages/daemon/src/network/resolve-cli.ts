/**
 * Run by kilnd inside a sandbox's netns (`ip netns exec kiln-<hex> node resolve-cli.js JSON`)
 * to resolve denied domains the way that sandbox's resolver would: the same upstream servers,
 * reached over the same route. Input: {"servers":[…],"names":[…],"timeoutMs":N}. Output, one
 * JSON object: {"answers":[{"name","address","ttl"}…],"failed":[name…]}.
 */
import { Resolver } from 'node:dns/promises';

interface Input {
  servers: string[];
  names: string[];
  timeoutMs?: number;
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}') as Input;
  const r = new Resolver({ timeout: input.timeoutMs ?? 2000, tries: 2 });
  r.setServers(input.servers);
  const answers: Array<{ name: string; address: string; ttl: number }> = [];
  const failed: string[] = [];
  await Promise.all(
    input.names.map(async (name) => {
      try {
        for (const a of await r.resolve4(name, { ttl: true })) answers.push({ name, address: a.address, ttl: a.ttl });
      } catch {
        failed.push(name);
      }
    }),
  );
  process.stdout.write(JSON.stringify({ answers, failed }) + '\n');
}

void main();
