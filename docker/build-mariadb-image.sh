#!/usr/bin/env bash
# Builds ferry's MariaDB image from Debian packages (for machines whose Docker engine cannot pull images):
# debootstrap a minimal bookworm root filesystem with mariadb-server, trim it, and `docker import` it.
# Idempotent: does nothing when the image already exists. Usage: docker/build-mariadb-image.sh [IMAGE]
set -euo pipefail
image="${1:-${FERRY_MARIADB_IMAGE:-ferry/mariadb:10.11}}"
here="$(cd "$(dirname "$0")" && pwd)"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "image $image exists; nothing to do"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }

# Use the mirror apt already uses on this machine (no other host is reachable on ours).
mirror="$( { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
  | grep -E '^(deb |URIs:)' | grep -oE 'https?://[^ ]+/debian/?' | head -n1 || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs="$(mktemp -d /tmp/ferry-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm from $mirror into $rootfs"
debootstrap --variant=minbase --include=mariadb-server bookworm "$rootfs" "$mirror" >/tmp/ferry-debootstrap.log 2>&1 \
  || { tail -n 30 /tmp/ferry-debootstrap.log >&2; exit 1; }
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/cache/apt/* \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/lib/mysql/*
find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {} + 2>/dev/null || true
install -m 0755 "$here/mariadb-entrypoint.sh" "$rootfs/usr/local/bin/ferry-entrypoint"
tar -C "$rootfs" -c . | docker import \
  --change 'ENTRYPOINT ["/usr/local/bin/ferry-entrypoint"]' \
  --change 'EXPOSE 3306' \
  --change 'ENV FERRY_ROOT_PASSWORD=ferry' - "$image"
echo "built $image"
