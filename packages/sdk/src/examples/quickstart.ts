import { Kiln } from '@kiln/sdk';

// KILN_SOCKET (local, admin) or KILN_HOST + KILN_API_KEY (remote) say where kilnd is.
const kiln = Kiln.connect();
{
  // `await using` destroys the sandbox when the block ends, even if it throws.
  await using sandbox = await kiln.sandboxes.create({ memoryMiB: 1024, labels: { example: 'quickstart' } });
  console.log('created', sandbox.id);

  // Streaming exec: output reaches the callbacks as the command writes it.
  const r = await sandbox.exec('for i in 1 2 3; do echo line $i; done; echo oops >&2', {
    onStdout: (s) => process.stdout.write(s),
    onStderr: (s) => process.stderr.write(s),
  });
  console.log('exit', r.exitCode);

  // stdin, env, cwd and a timeout.
  const up = await sandbox.exec(['tr', 'a-z', 'A-Z'], { stdin: 'hello from stdin\n' });
  console.log(up.stdout.trim());
  const env = await sandbox.exec('echo $GREETING from $(pwd)', { env: { GREETING: 'hi' }, cwd: '/tmp' });
  console.log(env.stdout.trim());
  const slow = await sandbox.exec('sleep 30', { timeoutMs: 500 });
  console.log('timed out:', slow.timedOut);

  // An AbortSignal kills the command.
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  await sandbox.exec('sleep 30', { signal: ac.signal }).catch((e: Error) => console.log('aborted:', e.name));
}
// Here the sandbox is gone.
