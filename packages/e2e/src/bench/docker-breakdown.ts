/**
 * Where an in-guest `docker run --rm` spends its time: dockerd's debug log of one run, cut into
 * phases by the lines dockerd writes anyway (API calls, libcontainerd's task events, the
 * network's release), with the guest clock read right before the CLI starts and right after it
 * returns. Debug logging is switched on (daemon.json + SIGHUP: dockerd reloads it live) only
 * for these runs and off again after them.
 */

/** Phase name → milliseconds, in the order a run goes through them. */
export type Breakdown = Array<[phase: string, ms: number]>;

/** Runs `docker run --rm IMAGE /bin/true` N times with debug on; prints markers and the log lines of each run. */
export function breakdownScript(image: string, runs: number): string {
  return `set -e
printf '{"debug": true}\\n' > /etc/docker/daemon.json; kill -HUP "$(cat /run/docker.pid)"; sleep 1
for i in $(seq 1 ${runs}); do
  n=$(wc -l < /var/log/kiln/dockerd.log)
  echo "@begin $(date +%s.%N)"; docker run --rm ${image} /bin/true; echo "@end $(date +%s.%N)"
  sleep 1; tail -n +$((n + 1)) /var/log/kiln/dockerd.log
done
rm -f /etc/docker/daemon.json; kill -HUP "$(cat /run/docker.pid)"
`;
}

/** Seconds since the epoch of a dockerd log line (time="2026-…Z"), or null. */
function lineTime(line: string): number | null {
  const m = /time="([^"]+)"/.exec(line);
  if (!m?.[1]) return null;
  // Date keeps milliseconds only; the nanoseconds are not needed for phases of tens of ms.
  const t = Date.parse(m[1]);
  return Number.isNaN(t) ? null : t / 1000;
}

/** The marks of one run, in seconds: the first log line matching each pattern after @begin. */
const MARKS: Array<[mark: string, re: RegExp]> = [
  ['ping', /Calling (HEAD|GET) \/_ping/],
  ['create', /Calling POST \/v[\d.]+\/containers\/create/],
  ['attach', /Calling POST \/v[\d.]+\/containers\/[0-9a-f]+\/attach/],
  ['start', /Calling POST \/v[\d.]+\/containers\/[0-9a-f]+\/start/],
  ['bundle', /bundle dir created/],
  ['taskCreate', /topic=\/tasks\/create/],
  ['taskExit', /topic=\/tasks\/exit/],
  ['taskDelete', /topic=\/tasks\/delete/],
  ['attachDone', /attach done/],
  ['released', /Released address/],
];

/** Phases between consecutive marks (a phase whose marks are missing is left out). */
const PHASES: Array<[phase: string, from: string, to: string]> = [
  ['CLI start → first API call', 'begin', 'ping'],
  ['ping → create', 'ping', 'create'],
  ['create (container, layer mount)', 'create', 'attach'],
  ['attach + wait → start call', 'attach', 'start'],
  ['start: network + bundle', 'start', 'bundle'],
  ['shim + runtime create + hook', 'bundle', 'taskCreate'],
  ['container runs and exits', 'taskCreate', 'taskExit'],
  ['task delete', 'taskExit', 'taskDelete'],
  ['stdio streams close', 'taskDelete', 'attachDone'],
  ['network release', 'attachDone', 'released'],
  ['CLI sees removal and exits', 'released', 'end'],
];

/** One Breakdown per run found in the script's output. */
export function parseBreakdowns(out: string): Breakdown[] {
  const runs: Breakdown[] = [];
  let marks: Map<string, number> | null = null;
  const finish = (): void => {
    if (!marks) return;
    const b: Breakdown = [];
    for (const [phase, from, to] of PHASES) {
      const a = marks.get(from);
      const z = marks.get(to);
      if (a !== undefined && z !== undefined && z >= a) b.push([phase, Math.round((z - a) * 1000)]);
    }
    const total = (marks.get('end') ?? NaN) - (marks.get('begin') ?? NaN);
    if (Number.isFinite(total)) b.push(['total', Math.round(total * 1000)]);
    runs.push(b);
    marks = null;
  };
  for (const line of out.split('\n')) {
    const begin = /^@begin (\d+\.\d+)/.exec(line);
    if (begin?.[1]) {
      finish();
      marks = new Map([['begin', Number(begin[1])]]);
      continue;
    }
    if (!marks) continue;
    const end = /^@end (\d+\.\d+)/.exec(line);
    if (end?.[1]) {
      marks.set('end', Number(end[1]));
      continue;
    }
    const t = lineTime(line);
    if (t === null) continue;
    for (const [mark, re] of MARKS) if (!marks.has(mark) && re.test(line)) marks.set(mark, t);
  }
  finish();
  return runs;
}

/** The median of each phase over the runs (phases in the first run's order). */
export function medianBreakdown(runs: Breakdown[]): Breakdown {
  const first = runs[0];
  if (!first) return [];
  return first.map(([phase]) => {
    const v = runs.map((r) => r.find(([p]) => p === phase)?.[1]).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    return [phase, v[Math.floor((v.length - 1) / 2)] ?? NaN];
  });
}
