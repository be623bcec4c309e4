#!/usr/bin/env bash
# Build the three images users deploy (operator, worker, gateway) on a machine without a registry:
#
#   1. Docker: uses the running daemon, or starts Debian's `dockerd` (installed with apt when
#      missing; machines without systemd cannot start its service) with its data under
#      $VIDEOJOBS_DOCKER_ROOT (default /var/lib/docker, outside the checkout, left as a cache).
#   2. The base image `debian:bookworm-slim` that every Dockerfile starts from, made locally from
#      Debian's archive: `debootstrap --variant=minbase` plus the minimizing Debian's official
#      images apply (debuerreotype: no docs/man/locales through dpkg path-excludes, policy-rc.d,
#      apt clean-up, deb822 sources). Unlike the official image it also trusts this host's CA
#      bundle (/usr/local/share/ca-certificates + /etc/pip.conf), because this network intercepts
#      TLS; the product Dockerfiles add nothing for it (docs/install.md, "Building the images").
#      Cached: rebuilt only when its content key (this recipe, the suite, the architecture, the
#      host CA bundle) changes; VIDEOJOBS_BASE_REBUILD=1 forces it.
#   3. `docker build` of operator/Dockerfile, job_image/Dockerfile and gateway/Dockerfile, exactly
#      the README's lines, tagged videojobs-{operator,worker,gateway}:$VIDEOJOBS_IMAGE_TAG (ci).
#
# Usage: .ci/images/build.sh [--base-only] | --stop-daemon | --report
#   --report prints each image's size and layers as Markdown; --stop-daemon stops the dockerd this script started (its pid is in $VIDEOJOBS_DOCKER_PIDFILE);
#   a daemon it did not start is left alone.
# Build times go to stderr; everything runs under `nice` (the machines are shared).
set -euo pipefail
cd "$(dirname "$0")/../.."

DOCKER_ROOT=${VIDEOJOBS_DOCKER_ROOT:-/var/lib/docker}
PIDFILE=${VIDEOJOBS_DOCKER_PIDFILE:-/run/videojobs-dockerd.pid}
DOCKERD_LOG=${VIDEOJOBS_DOCKERD_LOG:-/var/log/videojobs-dockerd.log}
TAG=${VIDEOJOBS_IMAGE_TAG:-ci}
SUITE=bookworm
MIRROR=${VIDEOJOBS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=debian:bookworm-slim
HOST_CA=/etc/ssl/certs/ca-certificates.crt
# Debian's 20.10 client: it drives the daemon's BuildKit (a newer client without the buildx plugin
# falls back to the legacy builder); /usr/local/bin may hold such a client.
DOCKER=${DOCKER:-/usr/bin/docker}
export DOCKER_BUILDKIT=1

log() { printf '[images] %s\n' "$*" >&2; }
die() {
  printf '[images] error: %s\n' "$*" >&2
  exit 1
}

stop_daemon() {
  if [ -s "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping dockerd (pid $pid)"
      kill "$pid"
      for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$PIDFILE"
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

ensure_packages() {
  local need=()
  [ -x /usr/bin/docker ] && command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
  if ((${#need[@]})); then
    log "installing ${need[*]} with apt-get"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

ensure_daemon() {
  if "$DOCKER" info >/dev/null 2>&1; then
    return
  fi
  [ "$(id -u)" = 0 ] || die "no Docker daemon answers and only root can start one here"
  log "starting dockerd (data root $DOCKER_ROOT, log $DOCKERD_LOG)"
  mkdir -p "$DOCKER_ROOT" "$(dirname "$DOCKERD_LOG")"
  # setsid: the daemon outlives this script (and .ci/run stops it with --stop-daemon).
  setsid dockerd --data-root "$DOCKER_ROOT" >"$DOCKERD_LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 120); do
    "$DOCKER" info >/dev/null 2>&1 && return
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.5
  done
  tail -20 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not start"
}

# The minimizing of Debian's official images (debuerreotype-minimizing-config, -slimify,
# -debian-sources-list, -apt-get clean), applied to a debootstrap tree in $1.
minimize_rootfs() {
  local root=$1
  cat >"$root/usr/sbin/policy-rc.d" <<'POLICY'
#!/bin/sh
# no services start inside a container image build
exit 101
POLICY
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  cat >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'APT'
Apt::AutoRemove::SuggestsImportant "false";
APT
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  cat >"$root/etc/apt/apt.conf.d/docker-gzip-indexes" <<'APT'
Acquire::GzipIndexes "true";
APT
  cat >"$root/etc/apt/apt.conf.d/docker-no-languages" <<'APT'
Acquire::Languages "none";
APT
  echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
# The "slim" variant of Debian's official images: no documentation, manuals or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
DPKG
  find "$root/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root/usr/share/groff" "$root/usr/share/info" "$root/usr/share/linda" \
    "$root/usr/share/lintian" "$root/usr/share/man"
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
    "$root/var/cache/ldconfig/aux-cache" "$root/var/log/"*.log "$root/var/log/apt/"* \
    "$root/root/.bash_history"
  : >"$root/etc/machine-id"
  : >"$root/etc/resolv.conf"
  echo localhost >"$root/etc/hostname"
}

# CI only: this network intercepts TLS, so builds inside the image must trust what the host trusts.
add_host_trust() {
  local root=$1
  mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
  # update-ca-certificates (ca-certificates' postinst) keeps what /usr/local/share holds.
  cp "$HOST_CA" "$root/usr/local/share/ca-certificates/videojobs-ci-host.crt"
  cp "$HOST_CA" "$root/etc/ssl/certs/ca-certificates.crt"
  # pip (Debian's 23.0) reads its bundled certifi, not the system bundle, unless told.
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
}

base_key() {
  {
    declare -f minimize_rootfs add_host_trust
    echo "$SUITE $(dpkg --print-architecture) $MIRROR"
    [ -r "$HOST_CA" ] && sha256sum <"$HOST_CA"
  } | sha256sum | cut -c1-16
}

ensure_base() {
  local key have
  key=$(base_key)
  have=$("$DOCKER" image inspect "$BASE" --format '{{ index .Config.Labels "org.videojobs.base-key" }}' 2>/dev/null || true)
  if [ "$have" = "$key" ] && [ -z "${VIDEOJOBS_BASE_REBUILD:-}" ]; then
    log "base $BASE is current (key $key)"
    return
  fi
  [ "$(id -u)" = 0 ] || die "making the base image with debootstrap needs root"
  local root start
  start=$(date +%s)
  root=$(mktemp -d /var/tmp/videojobs-base.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$root'" EXIT
  log "making $BASE with debootstrap --variant=minbase $SUITE (key $key)"
  nice debootstrap --variant=minbase \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    tail -30 "$root.log" >&2
    die "debootstrap failed (log $root.log)"
  }
  rm -f "$root.log"
  minimize_rootfs "$root"
  add_host_trust "$root"
  tar --numeric-owner --xattrs -C "$root" -c . |
    "$DOCKER" import --change 'CMD ["bash"]' --change "LABEL org.videojobs.base-key=$key" \
      --change 'LABEL org.videojobs.base="debootstrap --variant=minbase, minimized like the official image, plus the CI host CA bundle"' \
      - "$BASE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  log "base $BASE made in $(($(date +%s) - start)) s"
}

# What the images are built from: tests/images compares it with the images' label, so that images
# older than the checkout are not tested as if they were current.
SOURCES=(pyproject.toml README.md constraints.txt .dockerignore videojobs operator job_image gateway)
source_key() {
  find "${SOURCES[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

build_images() {
  local name dockerfile start key
  key=$(source_key)
  for pair in operator:operator/Dockerfile worker:job_image/Dockerfile gateway:gateway/Dockerfile; do
    name=videojobs-${pair%%:*}
    dockerfile=${pair#*:}
    start=$(date +%s)
    log "building $name:$TAG from $dockerfile"
    nice "$DOCKER" build --progress=plain --label "org.videojobs.source=$key" \
      -f "$dockerfile" -t "$name:$TAG" . >&2 ||
      die "$dockerfile does not build"
    log "$name:$TAG built in $(($(date +%s) - start)) s," \
      "$("$DOCKER" image inspect "$name:$TAG" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
  done
}

if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  # dockerd and debootstrap need root (CI runners: a user with passwordless sudo)
  exec sudo -n --preserve-env=VIDEOJOBS_DOCKER_ROOT,VIDEOJOBS_DOCKER_PIDFILE,VIDEOJOBS_DOCKERD_LOG,VIDEOJOBS_IMAGE_TAG,VIDEOJOBS_DEBIAN_MIRROR,VIDEOJOBS_BASE_REBUILD "$0" "$@"
fi
# Markdown: each image's size and its largest layers (docs/benchmarks.md, "Container images").
report() {
  local name
  for name in operator worker gateway; do
    printf '\n**videojobs-%s:%s**: %s\n\n| layer | made by |\n| ---: | --- |\n' "$name" "$TAG" \
      "$("$DOCKER" image inspect "videojobs-$name:$TAG" --format '{{.Size}}' |
        awk '{printf "%.0f MB", $1/1e6}')"
    "$DOCKER" history --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "videojobs-$name:$TAG" |
      awk -F'\t' '$1 != "0B" {
        cmd = $2; sub(/^\/bin\/sh -c /, "", cmd); gsub(/[ ]+/, " ", cmd); gsub(/\|/, "\\|", cmd)
        if (cmd == "") cmd = "(the base image)"
        printf "| %s | `%s` |\n", $1, substr(cmd, 1, 90)
      }'
  done
}

case "${1:-}" in
  --stop-daemon)
    stop_daemon
    exit 0
    ;;
  --report)
    report
    exit 0
    ;;
  --base-only | '') ;;
  *) die "usage: $0 [--base-only] | --stop-daemon | --report" ;;
esac
ensure_packages
ensure_daemon
ensure_base
[ "${1:-}" = --base-only ] || build_images
