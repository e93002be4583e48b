/**
 * The base image a coding agent expects, on a real microVM restored from the default template,
 * as the non-root `user`, with local inputs only (the sandbox has no uplink: nothing here can
 * reach a registry): git clone of a local bare repository, a venv + pip install of a wheel built
 * offline, npm ci of a project whose only dependency is a local directory, make of a C program,
 * sudo without a password, and docker compose up of two services whose image is built in the
 * guest FROM scratch with the guest's static busybox. Then, as root: Docker's containers share
 * the one long-lived containerd shim (docs/image.md), exec and restart work in them, and with
 * that shim killed the next container still starts (a shim of its own). One sandbox for the
 * whole file.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();

describe('the base image: tools for coding agents, as user, offline', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('base-image');
  let id = '';
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  /** Runs `shell` as `user` in /home/user with `set -e`; returns stdout, fails with everything it printed. */
  const asUser = async (shell: string): Promise<string> => {
    const out: Buffer[] = [];
    const all: Buffer[] = [];
    let code: number | null = null;
    for await (const ev of fx.client.exec(id, { shell: `set -e; cd /home/user; ${shell}`, user: 'user', timeoutMs: 600_000 })) {
      if (ev.type === 'stdout' || ev.type === 'stderr') {
        const b = Buffer.from(ev.data, 'base64');
        if (ev.type === 'stdout') out.push(b);
        all.push(b);
      } else if (ev.type === 'exit') code = ev.exitCode;
      else if (ev.type === 'error') throw new Error(`${ev.error.code}: ${ev.error.message}`);
    }
    assert.equal(code, 0, `exit ${code}:\n${Buffer.concat(all).toString().slice(-4000)}`);
    return Buffer.concat(out).toString();
  };

  /** Runs `shell` as root with `set -e`; returns stdout, fails with everything it printed. */
  const asRoot = async (shell: string): Promise<string> => {
    const r = await fx.sh(id, `set -e; ${shell}`, 600_000);
    assert.equal(r.code, 0, `exit ${r.code}:\n${r.all.slice(-4000)}`);
    return r.out;
  };

  before(async () => {
    await fx.start();
    id = (await fx.client.create({ labels: { suite: 'base-image' } })).id;
    process.stderr.write(`sandbox under test: ${id}\n`);
  });
  after(async () => fx.close());

  t('the tools are there, at the versions the image promises', async () => {
    const out = await asUser(
      'for c in git curl wget python3 pip3 node npm npx gcc g++ make jq unzip ps sudo docker; do command -v $c >/dev/null || { echo "missing $c"; exit 1; }; done; ' +
        'node --version; docker compose version --short; docker buildx version; python3 -c "import venv, ensurepip"; id -nG',
    );
    const [nodeVersion, compose, buildx, groups] = out.trim().split('\n');
    assert.match(nodeVersion ?? '', /^v(2[4-9]|[3-9]\d)\./, 'Node.js LTS (24 or later)');
    assert.match(compose ?? '', /^v?2\./);
    assert.match(buildx ?? '', /buildx/);
    assert.match(groups ?? '', /\bdocker\b/);
    assert.match(await asUser("docker version --format '{{.Server.Version}}'"), /^(2[6-9]|[3-9]\d)\./, 'Docker 26 or later');
  });

  t('sudo -n works for user; root is there on request', async () => {
    assert.equal(await asUser('sudo -n true && sudo -n id -u'), '0\n');
    assert.equal((await fx.sh(id, 'id -u')).out, '0\n');
  });

  t('git clone of a local bare repository', async () => {
    const out = await asUser(
      'git config --global user.email u@example.invalid; git config --global user.name u; git config --global init.defaultBranch main; ' +
        'git init -q --bare repo.git; git init -q work; cd work; echo hello > README; git add README; git commit -qm first; git push -q ../repo.git main; cd ..; ' +
        'git clone -q repo.git clone; cat clone/README; git -C clone log --format=%s',
    );
    assert.equal(out, 'hello\nfirst\n');
  });

  t('python3 -m venv + pip install of a wheel built offline', async () => {
    const out = await asUser(
      'mkdir -p pyproj/kilnhello; cd pyproj; ' +
        "printf '[build-system]\\nrequires = [\"setuptools\"]\\nbuild-backend = \"setuptools.build_meta\"\\n[project]\\nname = \"kilnhello\"\\nversion = \"1.0\"\\n' > pyproject.toml; " +
        "printf 'def hello():\\n    return \"hello from a wheel\"\\n' > kilnhello/__init__.py; " +
        'python3 -m pip wheel -q --no-index --no-build-isolation --no-deps -w ../dist . ; cd ..; ' +
        'python3 -m venv venv; venv/bin/pip install -q --no-index dist/kilnhello-1.0-py3-none-any.whl; ' +
        'venv/bin/python -c "import kilnhello; print(kilnhello.hello())"',
    );
    assert.equal(out, 'hello from a wheel\n');
  });

  t('npm ci of a local project (a file: dependency, a lockfile, no registry)', async () => {
    const out = await asUser(
      'mkdir -p nodeproj/lib; cd nodeproj; ' +
        `printf '{"name":"lib","version":"1.0.0","main":"index.js"}' > lib/package.json; ` +
        `printf 'module.exports = () => "hello from lib";' > lib/index.js; ` +
        `printf '{"name":"app","version":"1.0.0","private":true,"dependencies":{"lib":"file:./lib"}}' > package.json; ` +
        // the registry points nowhere: any fetch would fail the install
        'export npm_config_registry=http://127.0.0.1:9/ npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false; ' +
        'npm install --offline --silent; test -f package-lock.json; rm -rf node_modules; npm ci --offline --silent; ' +
        `node -e 'console.log(require("lib")())'`,
    );
    assert.equal(out, 'hello from lib\n');
  });

  t('make of a C program', async () => {
    const out = await asUser(
      'mkdir -p cproj; cd cproj; ' +
        `printf '#include <stdio.h>\\nint main(void) { puts("hello from C"); return 0; }\\n' > hello.c; ` +
        `printf 'hello: hello.c\\n\\t$(CC) -O2 -o $@ $<\\n' > Makefile; make -s; ./hello`,
    );
    assert.equal(out, 'hello from C\n');
  });

  t('docker compose up of two services built FROM scratch in the guest (a network, DNS between services)', async () => {
    const out = await asUser(
      'mkdir -p compose/img/www; cd compose; cp /opt/kiln/bin/busybox img/busybox; echo "hello from web" > img/www/index.html; ' +
        `printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nCOPY www /www\\n' > img/Dockerfile; ` +
        `printf 'services:\\n  web:\\n    build: ./img\\n    image: kiln-test/bb\\n    command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\\n` +
        `  client:\\n    image: kiln-test/bb\\n    depends_on: [web]\\n` +
        `    command: ["/bin/busybox", "sh", "-c", "for i in $$(/bin/busybox seq 1 60); do /bin/busybox wget -qO- http://web:8080/index.html && exit 0; /bin/busybox sleep 0.5; done; exit 1"]\\n' > compose.yaml; ` +
        'docker compose build -q web >/dev/null 2>&1 || docker compose build web; ' +
        'docker compose up --no-color --abort-on-container-exit --exit-code-from client >up.log 2>&1 || { cat up.log; exit 1; }; ' +
        'grep -o "hello from web" up.log | head -1; docker compose down -t 1 >/dev/null 2>&1',
    );
    assert.equal(out, 'hello from web\n');
  });

  t("Docker's containers share one containerd shim; with that shim gone they still start", async () => {
    const out = await asRoot(
      'docker run -d --name s1 kiln-test/bb /bin/busybox sleep 300 >/dev/null; docker run -d --name s2 kiln-test/bb /bin/busybox sleep 300 >/dev/null; ' +
        'echo "shims $(pgrep -c -f "[c]ontainerd-shim-runc-v2 -namespace")"; docker exec s1 /bin/busybox echo exec-ok; ' +
        'docker restart -t 0 s2 >/dev/null; docker exec s2 /bin/busybox echo restart-ok; docker rm -f s1 s2 >/dev/null; ' +
        // the shared shim killed: its socket stays, nobody answers it; the next container gets a shim of its own
        'pkill -KILL -f "[c]ontainerd-shim-runc-v2 -namespace .* -id kiln-shim-anchor "; sleep 1; ' +
        'docker run --rm kiln-test/bb /bin/busybox echo own-shim-ok',
    );
    assert.equal(out, 'shims 1\nexec-ok\nrestart-ok\nown-shim-ok\n');
  });
});
