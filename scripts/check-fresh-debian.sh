#!/usr/bin/env bash
# Proves the newcomer path: the README's setup, run in a fresh Debian 12 (minbase, no Node.js,
# no compiler), gets as far as a working Node, `npm ci`, the build and `kiln --version` from
# another directory. Uses the same scripts/setup.sh with KILN_SETUP_NO_QEMU=1 and
# KILN_SETUP_NO_IMAGE=1 (a chroot cannot run VMs; the image path is covered by CI's demo step).
#
# The fresh root comes from debootstrap and is cached as a tarball under $KILN_FRESH_CACHE
# (default /var/cache/kiln-fresh), keyed by the hash of its recipe (suite, variant, mirror) and
# the month, so a rerun only unpacks it; KILN_FRESH_REFRESH=1 rebuilds it. Each run unpacks a
# new copy, copies this checkout's HEAD into it (git archive), and removes it afterwards.
# Needs root and network access to Debian's mirror and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then echo "check-fresh-debian: run as root (debootstrap, chroot, mounts)" >&2; exit 1; fi
command -v debootstrap >/dev/null || { echo "check-fresh-debian: debootstrap is missing (scripts/setup.sh installs it)" >&2; exit 1; }

SUITE=bookworm
VARIANT=minbase
MIRROR=${KILN_FRESH_MIRROR:-http://deb.debian.org/debian}
CACHE=${KILN_FRESH_CACHE:-/var/cache/kiln-fresh}
key=$(printf '%s\n' "$SUITE" "$VARIANT" "$MIRROR" "$(date -u +%Y-%m)" | sha256sum | cut -c1-16)
tarball="$CACHE/debian-$SUITE-$VARIANT-$key.tar"
start=$(date +%s)

mkdir -p "$CACHE"
if [ ! -s "$tarball" ] || [ "${KILN_FRESH_REFRESH:-0}" = 1 ]; then
  echo "==> debootstrap --variant=$VARIANT $SUITE (cached as $tarball)"
  build=$(mktemp -d "$CACHE/build.XXXXXX")
  trap 'rm -rf --one-file-system "$build"' EXIT
  debootstrap --variant="$VARIANT" "$SUITE" "$build" "$MIRROR" >"$build.log" 2>&1 ||
    { tail -n 20 "$build.log" >&2; rm -f "$build.log"; exit 1; }
  rm -f "$build.log"
  tar -C "$build" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$build"
  trap - EXIT
  # Older months' roots are stale: keep only this one.
  find "$CACHE" -maxdepth 1 -name "debian-$SUITE-$VARIANT-*.tar" ! -path "$tarball" -delete
fi

root=$(mktemp -d "$CACHE/root.XXXXXX")
chmod 0755 "$root" # it is the chroot's /: apt's _apt user must get through it
mounted=()
cleanup() {
  local status=$? m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m=${mounted[$i]}
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  # Never delete through a mount that is still there (a bound /dev would take the host's with it).
  if findmnt -rn -o TARGET | grep -q "^$root"; then
    echo "check-fresh-debian: $root still has mounts; left in place" >&2
  else
    rm -rf --one-file-system "$root"
  fi
  exit "$status"
}
trap cleanup EXIT
echo "==> unpacking a fresh root into $root"
tar -C "$root" -xf "$tarball"

if chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c 'command -v node || command -v nodejs || command -v gcc'; then
  echo "check-fresh-debian: the fresh root already has Node or a compiler" >&2; exit 1
fi

echo "==> copying HEAD ($(git rev-parse --short HEAD)) to /root/kiln"
mkdir -p "$root/root/kiln"
git archive --format=tar HEAD | tar -C "$root/root/kiln" -xf -
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# A host whose egress passes a TLS-intercepting proxy trusts its CA locally: the chroot must too
# (ca-certificates, installed by setup, picks these up; Node reads NODE_EXTRA_CA_CERTS). A machine
# without such a proxy has neither, and the chroot then gets neither.
mkdir -p "$root/usr/local/share/ca-certificates"
cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
passenv=()
for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE CURL_CA_BUNDLE http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!v:-}" ]; then passenv+=("$v=${!v}"); fi
done
# No service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --bind /dev "$root/dev" && mounted+=("$root/dev")
mount --bind /dev/pts "$root/dev/pts" && mounted+=("$root/dev/pts")

echo "==> in the chroot: scripts/setup.sh (KILN_SETUP_NO_QEMU=1 KILN_SETUP_NO_IMAGE=1)"
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 "${passenv[@]}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  KILN_SETUP_NO_QEMU=1 KILN_SETUP_NO_IMAGE=1 /bin/bash -c '
    set -euo pipefail
    cd /root/kiln && ./scripts/setup.sh
    cd /
    echo "==> from / after setup:"
    echo "node --version: $(node --version)"
    echo "kiln --version: $(kiln --version)"
    test "$(node -p "process.versions.node.split(\".\")[0]")" = 24
    test "$(command -v kiln)" = /usr/local/bin/kiln
    test -f /etc/systemd/system/kilnd.service
  '
echo "==> fresh Debian 12 check passed in $(( $(date +%s) - start )) s"
