/**
 * `kiln exec -it` and the process commands in a real terminal: the CLI runs inside tmux (a real
 * pseudo-terminal), keystrokes go in with send-keys and the screen comes back with capture-pane.
 * The guest PTY sees the terminal's size and its changes (tmux resize → SIGWINCH → resize), Ctrl-C
 * reaches the guest's foreground process, and the exit code comes back as the CLI's.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, DaemonFixture, integrationSkipReason } from './harness.js';

const noTmux = spawnSync('tmux', ['-V']).status === 0 ? null : 'tmux is not installed (scripts/setup.sh installs it)';
const skip = integrationSkipReason() ?? noTmux;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kiln exec -it and background processes in a real terminal', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('terminal');
  const session = `kiln-it-term-${process.pid}`;
  let id = '';
  let procs = true;
  const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
  const screen = () => tmux('capture-pane', '-p', '-t', session);
  const waitScreen = async (re: RegExp, what: string) => {
    for (let i = 0; i < 600; i++) {
      const s = screen();
      if (re.test(s)) return s;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}; screen:\n${screen()}`);
  };

  before(async () => {
    await fx.start();
    id = (await fx.client.create({})).id;
    procs = (await fx.client.call('GET', `/v1/sandboxes/${id}/processes`).then(() => true, (e: { code?: string }) => e.code !== 'ROUTE_NOT_FOUND'));
  });
  after(async () => {
    spawnSync('tmux', ['kill-session', '-t', session]);
    await fx.close();
  });

  fx.test('exec -it: size, resize on SIGWINCH, Ctrl-C to the guest, exit code back', async () => {
    if (!procs) return void process.stderr.write('skipped: this kilnd has no PTY routes yet (branch procs)\n');
    const exitFile = join(fx.stateDir, 'exit-code');
    tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', `${process.execPath} ${CLI} --socket ${fx.socket} exec -it ${id} -- bash; echo $? > ${exitFile}`);
    await waitScreen(/[#$]\s*$/m, 'the guest prompt');
    tmux('send-keys', '-t', session, 'stty size', 'Enter');
    await waitScreen(/^30 100\s*$/m, 'stty size 30 100');
    tmux('resize-window', '-t', session, '-x', '120', '-y', '40');
    tmux('send-keys', '-t', session, 'clear; stty size', 'Enter');
    await waitScreen(/^40 120\s*$/m, 'stty size 40 120 after the resize');
    // Ctrl-C only once sleep runs: a loaded machine can take seconds to get there, and a ^C at
    // bash's own prompt proves less (and draws no newline before the next prompt).
    tmux('send-keys', '-t', session, 'clear; echo sleeping-now; sleep 1000', 'Enter');
    await waitScreen(/^sleeping-now\s*$/m, 'the marker before sleep');
    await sleep(1500);
    tmux('send-keys', '-t', session, 'C-c');
    // bash drops the rest of a line whose command died of SIGINT: ask for the status afterwards.
    await waitScreen(/\^C\s*\n.*[#$]\s*$/m, 'Ctrl-C interrupting sleep in the guest');
    tmux('send-keys', '-t', session, 'echo after-sleep-$?', 'Enter');
    await waitScreen(/^after-sleep-130\s*$/m, 'the status of the interrupted sleep (128 + SIGINT)');
    tmux('send-keys', '-t', session, 'exit 7', 'Enter');
    for (let i = 0; i < 300 && !existsSync(exitFile); i++) await sleep(100);
    assert.equal(readFileSync(exitFile, 'utf8').trim(), '7');
  });

  fx.test('exec -d prints a pid; ps lists it; attach from offset 0 shows the earlier output and exits with its code; kill', async () => {
    if (!procs) return void process.stderr.write('skipped: this kilnd has no process routes yet (branch procs)\n');
    const started = await fx.cli(['exec', '-d', '--tag', 'ticker', id, '--', 'sh', '-c', 'echo one; sleep 2; echo two; exit 3']);
    assert.equal(started.code, 0, started.stderr);
    const pid = started.stdout.toString().trim();
    assert.match(pid, /^\d+$/);
    const ps = await fx.cli(['ps', id]);
    assert.match(ps.stdout.toString(), new RegExp(`^${pid}\\s+\\S+.*ticker`, 'm'));
    const attached = await fx.cli(['attach', id, pid, '--offset', '0']);
    assert.equal(attached.stdout.toString(), 'one\ntwo\n');
    assert.equal(attached.code, 3);
    const long = (await fx.cli(['exec', '-d', id, '--', 'sleep', '1000'])).stdout.toString().trim();
    assert.equal((await fx.cli(['kill', id, long])).code, 0);
    const after = await fx.cli(['attach', id, long]);
    assert.equal(after.code, 128 + 9);
  });
});
