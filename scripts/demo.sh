#!/usr/bin/env bash
# kiln's main job, end to end: set up, start kilnd, create a sandbox, build a container image
# inside it from local files (no registry needed), run the container with the sandbox's
# private Docker daemon, print its output, remove the sandbox, stop kilnd.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${KILN_SKIP_SETUP:-0}" = 1 ] || ./scripts/setup.sh
# kiln's own Node.js LTS (scripts/install-node.sh), not whatever node the machine had.
export PATH="/opt/kiln/node/bin:$PATH"

export KILN_SOCKET="${KILN_SOCKET:-/run/kiln/kiln.sock}"
STATE_DIR="${KILN_STATE_DIR:-/var/lib/kiln}"
LOG="$(mktemp /tmp/kilnd-demo.XXXXXX.log)"
kiln() { node packages/cli/dist/main.js "$@"; }

echo "==> starting kilnd (log: $LOG)"
node packages/daemon/dist/kilnd.js --socket "$KILN_SOCKET" --state-dir "$STATE_DIR" >"$LOG" 2>&1 &
KILND=$!
ID=""
cleanup() {
  status=$?
  if [ -n "$ID" ]; then kiln rm "$ID" >/dev/null 2>&1 || true; fi
  kill -TERM "$KILND" 2>/dev/null || true
  wait "$KILND" 2>/dev/null || true
  if [ $status -ne 0 ]; then echo "demo failed; kilnd log:" >&2; tail -n 40 "$LOG" >&2; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do [ -S "$KILN_SOCKET" ] && break; sleep 0.1; done

echo "==> kiln create"
ID="$(kiln create --memory 1024 --cpus 2 --label demo=true | tail -n 1)"
echo "sandbox: $ID"

echo "==> building a tiny container image inside the sandbox from a static busybox"
kiln cp /bin/busybox "$ID:/root/tiny/bin/busybox"
kiln exec "$ID" -- sh -c 'cd /root/tiny && ln -sf busybox bin/sh && tar -c . | docker import - tiny:latest'

echo "==> docker run inside the sandbox"
kiln exec "$ID" -- docker run --rm tiny:latest /bin/sh -c 'echo "hello from a container in $(uname -n), kernel $(uname -r)"'

echo "==> kiln rm"
kiln rm "$ID"
ID=""
echo "==> done"
