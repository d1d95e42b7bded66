# Shared by scripts/demo and scripts/test: make sure a MariaDB/MySQL server binary is here, and (best effort) the
# locally built docker image. Sourced, not run.

need_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# A mariadbd/mysqld on PATH (or in /usr/sbin) for the local backend; installs MariaDB from Debian's packages if missing.
ensure_server() {
  export PATH="$PATH:/usr/sbin:/usr/local/sbin"
  if command -v mariadbd >/dev/null || command -v mysqld >/dev/null; then
    if command -v mariadb >/dev/null || command -v mysql >/dev/null; then return 0; fi
  fi
  echo "== installing mariadb-server and mariadb-client (Debian packages)"
  need_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  # Keep the package's own service from starting: ferry runs its own throwaway servers.
  need_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q mariadb-server mariadb-client debootstrap >/dev/null
  need_root service mariadb stop >/dev/null 2>&1 || true
}

# Anchor tools the scenarios and benchmarks drive (pt-online-schema-change, pt-table-sync): Debian's percona-toolkit.
ensure_tools() {
  if command -v pt-online-schema-change >/dev/null && command -v pt-table-sync >/dev/null; then return 0; fi
  echo "== installing percona-toolkit (Debian package)"
  need_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q percona-toolkit >/dev/null
}

# The docker provider's image, when a docker daemon answers. Failure here is not fatal: the local provider remains.
ensure_image() {
  if ! docker info >/dev/null 2>&1; then
    echo "== no docker daemon answers; servers will be local processes"
    return 0
  fi
  if ! command -v debootstrap >/dev/null; then
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null || true
  fi
  bash "$(dirname "${BASH_SOURCE[0]}")/../docker/build-mariadb-image.sh" \
    || echo "== could not build the MariaDB image; servers will be local processes"
}

ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo is missing: install Rust from https://rustup.rs" >&2; exit 1; }
}

# The benchmark's anchors: mydumper/myloader (Debian's mydumper) and pt-table-sync; skipped with a note when an
# install fails, never silently.
ensure_bench_tools() {
  ensure_tools || echo "== percona-toolkit could not be installed: pt-table-sync will be skipped"
  if command -v mydumper >/dev/null && command -v myloader >/dev/null; then return 0; fi
  echo "== installing mydumper (Debian package)"
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mydumper >/dev/null \
    || echo "== mydumper could not be installed: mydumper + myloader will be skipped"
}
