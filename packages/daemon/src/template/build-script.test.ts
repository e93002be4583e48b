// The builder's output read on the host: the failing Dockerfile step, the image config, a listening port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listening, StepTracker, templateConfig } from './build-script.js';

test('a failed docker build names the step it was in and its instruction', () => {
  const s = new StepTracker();
  for (const l of ['Sending build context to Docker daemon  2.048kB', 'Step 1/4 : FROM kiln/busybox', ' ---> 1f0e', 'Step 3/4 : RUN echo before && false', ' ---> Running in 5d2']) s.line(l);
  const err = s.failure("before\nThe command '/bin/sh -c echo before && false' returned a non-zero code: 1\n");
  assert.equal(err.code, 'TEMPLATE_BUILD_STEP_FAILED');
  assert.deepEqual(err.details, { step: 3, of: 4, instruction: 'RUN echo before && false' });
  assert.match(err.message, /^Dockerfile step 3\/4 failed: RUN echo before && false: .*non-zero code: 1/);
  // Before any step (a context or Dockerfile problem): no step to name.
  assert.equal(new StepTracker().failure('unknown instruction: FORM').code, 'TEMPLATE_BUILD_FAILED');
});

test('the template config comes from the image: ENV, WORKDIR, USER, ENTRYPOINT + CMD, lowest EXPOSEd TCP port', () => {
  const c = templateConfig(
    { Env: ['PATH=/usr/bin:/bin', 'A=x=y'], WorkingDir: '/srv', User: 'app', Entrypoint: ['/entry'], Cmd: ['serve', '--port', '9000'], ExposedPorts: { '9000/tcp': {}, '53/udp': {}, '8080/tcp': {} } },
    {},
  );
  assert.deepEqual(c, { env: { PATH: '/usr/bin:/bin', A: 'x=y' }, workdir: '/srv', user: 'app', startCmd: ['/entry', 'serve', '--port', '9000'], readyPort: 8080, readyCmd: [] });
  // Overrides win; a ready command replaces the EXPOSE default; no start command, no default port.
  assert.deepEqual(templateConfig({ Cmd: ['a'], ExposedPorts: { '80/tcp': {} } }, { startCmd: ['b'], readyCmd: ['true'] }), { env: {}, workdir: '', user: '', startCmd: ['b'], readyPort: 0, readyCmd: ['true'] });
  assert.equal(templateConfig({ ExposedPorts: { '80/tcp': {} } }, {}).readyPort, 0);
  assert.equal(templateConfig({ Cmd: ['a'], ExposedPorts: { '80/tcp': {} } }, { readyPort: 0 }).readyPort, 0);
});

test('a port is ready when /proc/net/tcp shows it listening (state 0A), not merely connected', () => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:A1B2 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 1235 1 0000000000000000 20 4 30 10 -1',
  ].join('\n');
  assert.equal(listening(tcp, 8080), true);
  assert.equal(listening(tcp, 80), false);
  assert.equal(listening(tcp, 0xa1b2), false);
});
