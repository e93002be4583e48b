import { Kiln, SandboxNotFoundError } from '@kiln/sdk';

const kiln = Kiln.connect();
const sandbox = await kiln.sandboxes.create({ timeoutMs: 10 * 60_000 });

// Pause freezes the VM (memory kept, no CPU); resume picks up where it stopped.
await sandbox.exec('echo before > /tmp/state');
await sandbox.pause();
console.log('state', (await sandbox.refresh()).state);
await sandbox.resume();
console.log((await sandbox.exec('cat /tmp/state')).stdout.trim(), 'survived the pause');

// Extend the lifetime; look at the events so far and the guest's logs.
await sandbox.setTimeout(30 * 60_000);
for await (const ev of sandbox.events()) console.log('event', ev.type);
let n = 0;
for await (const line of sandbox.logs({ service: 'agent', tail: 3 })) if (line) n++;
console.log('log lines', n);

// A second client (another process, another machine) can connect by id.
const again = await Kiln.connect().sandboxes.connect(sandbox.id);
console.log('connected to', again.id);

await sandbox.kill();
try {
  await kiln.sandboxes.get(sandbox.id);
} catch (e) {
  console.log('gone:', e instanceof SandboxNotFoundError, (e as SandboxNotFoundError).code);
}
