// Which images a template build may pre-pull, what the builder pulls for each, and how its output is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRef, planPulls, pulledLine, pullError, saveScript } from './pre-pull.js';

test('references are read as docker reads them: registry host, repository, tag (latest by default)', () => {
  assert.deepEqual(parseRef('registry.kiln.internal/alpha/app:1'), { domain: 'registry.kiln.internal', path: 'alpha/app', tag: '1' });
  assert.deepEqual(parseRef('registry.kiln.internal/alpha/app'), { domain: 'registry.kiln.internal', path: 'alpha/app', tag: 'latest' });
  assert.deepEqual(parseRef('alpine:3.20'), { domain: 'docker.io', path: 'library/alpine', tag: '3.20' });
  assert.deepEqual(parseRef('localhost:5000/x/y'), { domain: 'localhost:5000', path: 'x/y', tag: 'latest' });
  for (const bad of ['registry.kiln.internal/a/b@sha256:00', 'Upper/case', 'a b', '', 'registry.kiln.internal/', '../x']) assert.throws(() => parseRef(bad), { code: 'INVALID_ARGUMENT' }, bad);
});

test('the private registry is pulled as named; other registries are refused unless they are the pull-through cache', () => {
  assert.deepEqual(planPulls(['registry.kiln.internal/alpha/app:1', 'registry.kiln.internal/alpha/app'], null), [
    { ref: 'registry.kiln.internal/alpha/app:1', source: 'registry.kiln.internal/alpha/app:1' },
    { ref: 'registry.kiln.internal/alpha/app:latest', source: 'registry.kiln.internal/alpha/app:latest' },
  ]);
  assert.throws(() => planPulls(['alpine:3'], null), /pull-through cache \(KILN_REGISTRY_REMOTE_URL\)/);
  assert.throws(() => planPulls(['ghcr.io/x/y:1'], 'https://registry-1.docker.io'), /or of registry-1\.docker\.io/);
  // Docker Hub through the cache: pulled as the cache's name, kept under the public one too.
  assert.deepEqual(planPulls(['alpine:3', 'docker.io/library/alpine:3', 'nginx'], 'https://registry-1.docker.io'), [
    { ref: 'alpine:3', source: 'registry.kiln.internal/library/alpine:3' },
    { ref: 'docker.io/library/alpine:3', source: 'registry.kiln.internal/library/alpine:3' },
    { ref: 'nginx:latest', source: 'registry.kiln.internal/library/nginx:latest' },
  ]);
  assert.deepEqual(planPulls(['ghcr.io/o/tool:2'], 'https://ghcr.io'), [{ ref: 'ghcr.io/o/tool:2', source: 'registry.kiln.internal/o/tool:2' }]);
  assert.throws(() => planPulls(Array.from({ length: 33 }, (_, i) => `registry.kiln.internal/a/x${i}`), null), /at most 32/);
});

test("the builder's output gives each image's id and digest, or the registry's error", () => {
  const p = { ref: 'alpine:3', source: 'registry.kiln.internal/library/alpine:3' };
  const out = '3: Pulling from library/alpine\nDigest: sha256:aa\nkiln-pulled sha256:id1 registry.kiln.internal/library/alpine@sha256:aa \n';
  assert.deepEqual(pulledLine(p, out), { image: 'alpine:3', digest: 'sha256:aa', id: 'sha256:id1' });
  assert.deepEqual(pulledLine(p, 'kiln-pulled sha256:id2 \n'), { image: 'alpine:3', digest: null, id: 'sha256:id2' });
  const denied = 'Error response from daemon: pull access denied for registry.kiln.internal/alpha/secret, repository does not exist or may require \'docker login\': denied: kiln: pull from alpha/secret is not allowed for tenant beta\n';
  assert.match(pullError(denied), /denied: kiln: pull from alpha\/secret is not allowed for tenant beta/);
  assert.match(pullError('Error response from daemon: manifest for registry.kiln.internal/a/nope:1 not found: manifest unknown\n'), /manifest unknown/);
  assert.equal(saveScript([p, { ref: 'registry.kiln.internal/a/b:1', source: 'registry.kiln.internal/a/b:1' }]), "exec docker save 'alpine:3' 'registry.kiln.internal/library/alpine:3' 'registry.kiln.internal/a/b:1'");
});
