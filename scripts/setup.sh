#!/usr/bin/env bash
# Installs everything kiln needs on a fresh Debian 12 machine (as root, with or without sudo):
# QEMU 10 from bookworm-backports, the guest-image tools, a supported Node.js LTS (from the npm
# registry, scripts/install-node.sh) and what native modules need to compile, npm dependencies,
# the build, `kiln` on the PATH, and the guest image (cached by the hash of its recipe: a second
# run does no image work).
#
# Switches (for a machine that only builds kiln, e.g. scripts/check-fresh-debian.sh's chroot):
#   KILN_SETUP_NO_QEMU=1   skip bookworm-backports, QEMU and the guest-image tools
#   KILN_SETUP_NO_IMAGE=1  skip the guest image build
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages and builds the guest image with debootstrap)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ "${KILN_SETUP_NO_QEMU:-0}" != 1 ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "==> adding bookworm-backports (QEMU 10: read-only template memory, file: migration under seccomp)"
  cat > /etc/apt/sources.list.d/kiln-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

echo "==> apt-get update"
apt-get update -qq
if [ "${KILN_SETUP_NO_QEMU:-0}" != 1 ]; then
  echo "==> installing QEMU (bookworm-backports) and host tools"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
  apt-get install -y -qq --no-install-recommends \
    debootstrap busybox-static nftables dnsmasq-base procps cpio e2fsprogs kmod zstd iproute2 util-linux >/dev/null
else
  echo "==> KILN_SETUP_NO_QEMU=1: no QEMU, no guest-image tools"
fi
# gcc + the static C library: `npm run build` compiles the guest's resident helper (kiln-guestctl)
# and the VMM launcher (kiln-vmm-launch). g++, make and python3: node-gyp builds better-sqlite3.
# curl (+ CA certificates): fetches Node.js from the npm registry. tmux: the terminal test drives
# `kiln exec -it` in it.
echo "==> installing the build tools (gcc, g++, make, python3, curl, tmux)"
apt-get install -y -qq --no-install-recommends gcc g++ make python3 libc6-dev curl ca-certificates tmux >/dev/null
# chromium: the browser tests (preview URLs, the dashboard) drive Debian's headless Chromium with
# playwright-core, which downloads no browser of its own.
echo "==> installing chromium (browser tests)"
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

# The private registry (docs/registry.md): Debian's docker-registry, run and supervised by kilnd
# (its own storage and config under the state dir); the package's system-wide service (on :5000,
# every interface) is disabled. socat: the registry's per-sandbox forwarder in each netns.
echo "==> installing docker-registry and socat (the private registry)"
apt-get install -y -qq --no-install-recommends docker-registry socat >/dev/null
systemctl disable --now docker-registry >/dev/null 2>&1 || true

./scripts/install-node.sh
# Everything below (and the guest image, which copies this node binary) uses kiln's Node.
export PATH="/opt/kiln/node/bin:$PATH"
# Native addons compile against this Node's headers, whatever a user or machine npmrc says.
export npm_config_nodedir=/opt/kiln/node

# The jailed VMM (docs/hardening.md): QEMU runs as this unprivileged system user (kilnd also
# creates it at start when missing); the VMM launcher drops to it.
if ! id kiln-vmm >/dev/null 2>&1; then
  echo "==> adding the kiln-vmm system user (QEMU runs as it)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kiln-vmm
fi

echo "==> npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "==> build"
npm run --silent build

# `kiln` (the client) and `kilnd` (the daemon: run, image build, doctor) from any directory:
# wrappers that run this checkout's binaries on kiln's Node.
cat > /usr/local/bin/kiln <<WRAP
#!/bin/sh
exec /opt/kiln/node/bin/node "$PWD/packages/cli/dist/main.js" "\$@"
WRAP
cat > /usr/local/bin/kilnd <<WRAP
#!/bin/sh
exec /opt/kiln/node/bin/node "$PWD/packages/daemon/dist/kilnd.js" "\$@"
WRAP
chmod 0755 /usr/local/bin/kiln /usr/local/bin/kilnd
echo "==> kiln: $(kiln --version) (/usr/local/bin/kiln, /usr/local/bin/kilnd -> $PWD)"

# kilnd as a systemd service (docs/operations.md): installed, not enabled or started.
unit_dir=/etc/systemd/system
mkdir -p "$unit_dir"
if ! cmp -s packaging/systemd/kilnd.service "$unit_dir/kilnd.service"; then
  install -m 0644 packaging/systemd/kilnd.service "$unit_dir/kilnd.service"
  echo "==> installed $unit_dir/kilnd.service (not enabled: systemctl enable --now kilnd)"
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi

if [ "${KILN_SETUP_NO_IMAGE:-0}" != 1 ]; then
  echo "==> guest image"
  node packages/daemon/dist/kilnd.js image build --state-dir "${KILN_STATE_DIR:-/var/lib/kiln}"
else
  echo "==> KILN_SETUP_NO_IMAGE=1: no guest image"
fi
echo "==> setup done"
