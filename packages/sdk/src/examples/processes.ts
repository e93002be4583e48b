import { Kiln } from '@kiln/sdk';

const kiln = Kiln.connect();
await using sandbox = await kiln.sandboxes.create();

// A background process keeps running when its client goes away.
const p = await sandbox.process.start({ cmd: 'for i in 1 2 3; do echo tick $i; sleep 1; done; read line; echo got $line', stdin: true, tag: 'ticker' });
console.log('started pid', p.pid);

// Another client, later: attach from offset 0 and receive the earlier output too.
const other = await Kiln.connect().sandboxes.connect(sandbox.id);
console.log((await other.process.list()).map((x) => `${x.pid} ${x.tag} ${x.state}`));
let seen = '';
const attached = other.process.connect(p.pid, { offset: 0, onStdout: (s) => (seen += s) });
await other.process.sendStdin(p.pid, 'bye\n');
const info = await attached.wait();
await attached.done;
console.log(seen.trim().split('\n'), 'exit', info.exitCode);

// The terminal: a PTY that sees its new size after a resize.
let screen = '';
await using term = await sandbox.pty.create({ cols: 80, rows: 24, onData: (d) => (screen += new TextDecoder().decode(d)) });
term.resize({ cols: 100, rows: 40 });
term.write('stty size; exit\n');
const status = await term.wait();
console.log(screen.includes('40 100') ? 'pty sees 40 100' : `pty screen: ${JSON.stringify(screen)}`, 'exit', status.exitCode);
