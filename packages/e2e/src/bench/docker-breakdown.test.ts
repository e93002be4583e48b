import { test } from 'node:test';
import assert from 'node:assert/strict';
import { breakdownScript, medianBreakdown, parseBreakdowns } from './docker-breakdown.js';

/** One real run's markers and dockerd debug lines (guest, 2026-12-07, trimmed). */
const RUN = `@begin 1796603785.622367703
time="2026-12-07T00:36:25.812269400Z" level=debug msg="Calling HEAD /_ping"
time="2026-12-07T00:36:25.835767200Z" level=debug msg="Calling POST /v1.45/containers/create"
time="2026-12-07T00:36:26.002010300Z" level=debug msg="container mounted via layerStore: /scratch/docker/x/merged"
time="2026-12-07T00:36:26.069880600Z" level=debug msg="Calling POST /v1.45/containers/b292/attach?stderr=1&stdout=1&stream=1"
time="2026-12-07T00:36:26.092657300Z" level=debug msg="Calling POST /v1.45/containers/b292/start"
time="2026-12-07T00:36:26.201095200Z" level=debug msg="bundle dir created" bundle=/var/run/docker/containerd/b292
time="2026-12-07T00:36:26.798495500Z" level=debug msg=event module=libcontainerd namespace=moby topic=/tasks/create
time="2026-12-07T00:36:26.882533600Z" level=debug msg=event module=libcontainerd namespace=moby topic=/tasks/start
time="2026-12-07T00:36:26.962400000Z" level=debug msg=event module=libcontainerd namespace=moby topic=/tasks/exit
time="2026-12-07T00:36:27.052230700Z" level=debug msg=event module=libcontainerd namespace=moby topic=/tasks/delete
time="2026-12-07T00:36:27.261094200Z" level=debug msg="attach done"
time="2026-12-07T00:36:27.306574900Z" level=debug msg="Revoking external connectivity on endpoint e"
time="2026-12-07T00:36:27.449513500Z" level=debug msg="Released address Address:172.17.0.2"
@end 1796603787.572657553
`;

test('a run is cut into phases between dockerd log lines; the phases add up to the total', () => {
  const [b, ...rest] = parseBreakdowns(RUN);
  assert.equal(rest.length, 0);
  const m = new Map(b);
  assert.equal(m.get('CLI start → first API call'), 190);
  assert.equal(m.get('create (container, layer mount)'), 234);
  assert.equal(m.get('shim + runtime create + hook'), 597);
  assert.equal(m.get('network release'), 188);
  assert.equal(m.get('CLI sees removal and exits'), 124);
  assert.equal(m.get('total'), 1950);
  const sum = (b ?? []).filter(([p]) => p !== 'total').reduce((s, [, ms]) => s + ms, 0);
  assert.ok(Math.abs(sum - 1950) <= 12, `phases sum to ${sum}`);
});

test('runs are told apart by their markers; a missing line drops only its phases; medians per phase', () => {
  const second = RUN.replace(/^.*bundle dir created.*\n/m, '').replaceAll('00:36:25.812269400', '00:36:25.922367703');
  const runs = parseBreakdowns(RUN + 'noise that is not a log line\n' + second);
  assert.equal(runs.length, 2);
  assert.ok(!runs[1]?.some(([p]) => p === 'shim + runtime create + hook'));
  assert.equal(new Map(runs[1]).get('CLI start → first API call'), 300);
  assert.equal(new Map(medianBreakdown(runs)).get('CLI start → first API call'), 190);
  assert.match(breakdownScript('kiln-bench-tiny', 3), /seq 1 3/);
});
