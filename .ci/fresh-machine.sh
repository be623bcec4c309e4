#!/usr/bin/env bash
# Functions run through step and the EXIT trap look unreachable to shellcheck:
# shellcheck disable=SC2317
# Try the README's "Try it" commands as a new user would, on a stock Debian 12 (bookworm) machine.
#
#   sudo bash .ci/fresh-machine.sh [REPOSITORY]     (REPOSITORY: a path or URL; default: this one)
#
# Builds a minimal Debian 12 root filesystem with debootstrap, installs only python3, python3-pip,
# python3-venv, git, sudo and ca-certificates, then twice, in two fresh copies of it: clones the
# repository (its committed HEAD) and runs the README's two commands verbatim in a new login
# shell, once as root and once as a non-root user with sudo rights. It prints one line per step
# with its exit code and time, and exits non-zero when any step fails. The only things taken from
# this machine are its DNS set-up (resolv.conf) and its extra CA certificates (for a TLS proxy). Needs root (debootstrap,
# chroot, mounts), network access to a Debian mirror and to PyPI, and about 3 GB in $WORKDIR.
#
# Environment: WORKDIR (default: a new directory under /var/tmp; kept, with a log per step, when
# a step fails or KEEP=1), MIRROR (default: the Debian mirror this machine's apt uses), SUITE
# (default bookworm), VARIANT (debootstrap variant, default minbase, as in the debian:12 image),
# REUSE_BASE (development only: the "base" directory of a kept earlier run, to skip debootstrap).
set -uo pipefail

SELF_REPO=$(cd "$(dirname "$0")/.." && pwd)
REPO=${1:-$SELF_REPO}
SUITE=${SUITE:-bookworm}
VARIANT=${VARIANT:-minbase}
PACKAGES=(python3 python3-pip python3-venv git sudo ca-certificates)
USER_NAME=newuser
CLONE=videojobs

if [ "$(id -u)" != 0 ]; then
  echo "fresh-machine.sh needs root (debootstrap, chroot and mounts): run it with sudo" >&2
  exit 2
fi
for tool in debootstrap chroot git mount; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "fresh-machine.sh needs '$tool' (Debian package: ${tool/chroot/coreutils})" >&2
    exit 2
  }
done

default_mirror() {
  # The first Debian (not -security) mirror of this machine's apt sources, deb822 or one-line.
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  local url
  url=$(cat "${files[@]}" 2>/dev/null \
    | grep -Eo '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
    | grep -Eo 'https?://[^[:space:]]+' | head -n 1)
  echo "${url:-http://deb.debian.org/debian}"
}
MIRROR=${MIRROR:-$(default_mirror)}
MIRROR=${MIRROR%/}

WORKDIR=${WORKDIR:-$(mktemp -d /var/tmp/videojobs-fresh.XXXXXX)}
mkdir -p "$WORKDIR/logs"
LOGS=$WORKDIR/logs
BASE=$WORKDIR/base
FAILED=0
STEPS=0
MOUNTED=()

cleanup() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount -l "${MOUNTED[i]}" 2>/dev/null || true
  done
  MOUNTED=()
  if [ "$FAILED" = 0 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf --one-file-system "$WORKDIR"
  else
    echo "kept $WORKDIR (logs in $LOGS)"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step NAME COMMAND...: run, log to $LOGS/NAME.log, print "NAME: exit N, T s".
step() {
  local name=$1 start ms rc log
  shift
  STEPS=$((STEPS + 1))
  log=$LOGS/$(printf '%02d' "$STEPS")-$(echo "$name" | tr -c 'A-Za-z0-9.\n-' _).log
  start=$(date +%s%N)
  "$@" >"$log" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  printf '%-40s exit %3d  %5d.%d s\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000 / 100))
  if [ "$rc" != 0 ]; then
    FAILED=1
    echo "---- last lines of $log:"
    tail -n 40 "$log"
    echo "----"
  fi
  return "$rc"
}

mount_into() {
  local root=$1
  mount -t proc proc "$root/proc" && MOUNTED+=("$root/proc")
  mount -t sysfs sysfs "$root/sys" && MOUNTED+=("$root/sys")
  mount --bind /dev "$root/dev" && MOUNTED+=("$root/dev")
  mount --bind /dev/pts "$root/dev/pts" && MOUNTED+=("$root/dev/pts")
  mount -t tmpfs -o mode=1777 shm "$root/dev/shm" && MOUNTED+=("$root/dev/shm")
}

unmount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTED[i]}" || umount -l "${MOUNTED[i]}"
  done
  MOUNTED=()
}

# in_root ROOT CMD...: run in the chroot with an empty environment (nothing of ours leaks in).
in_root() {
  local root=$1
  shift
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 chroot "$root" "$@"
}

make_base() {
  debootstrap --variant="$VARIANT" "$SUITE" "$BASE" "$MIRROR" || return 1
  cat >"$BASE/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
  cp -L /etc/resolv.conf "$BASE/etc/resolv.conf"
  echo fresh >"$BASE/etc/hostname"
  printf '127.0.0.1 localhost fresh\n::1 localhost ip6-localhost ip6-loopback\n' >"$BASE/etc/hosts"
}

install_packages() {
  mount_into "$BASE" || return 1
  in_root "$BASE" apt-get update -q &&
    in_root "$BASE" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}" &&
    in_root "$BASE" apt-get clean
  local rc=$?
  unmount_all
  return "$rc"
}

# This machine may reach the network through a TLS-inspecting proxy whose CA only the host trusts
# (like resolv.conf, a property of the machine, not of the image): the copy gets the same trust,
# through Debian's own mechanism (/usr/local/share/ca-certificates + update-ca-certificates).
host_cas() {
  find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' 2>/dev/null
}
trust_host_cas() {
  mapfile -t crts < <(host_cas)
  cp "${crts[@]}" "$BASE/usr/local/share/ca-certificates/" &&
    in_root "$BASE" update-ca-certificates
}

# try_as WHO: a fresh copy of the base, a clone in WHO's home, the README's commands in a login shell.
try_as() {
  local who=$1 root=$WORKDIR/$1 home n=0 cmd
  step "$who: copy base rootfs" cp -a "$BASE" "$root" || return 1
  if [ "$who" = root ]; then
    home=/root
  else
    home=/home/$USER_NAME
    step "$who: create sudo user" in_root "$root" sh -c \
      "useradd -m -s /bin/bash -G sudo $USER_NAME &&
       echo '$USER_NAME ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/$USER_NAME &&
       chmod 0440 /etc/sudoers.d/$USER_NAME" || return 1
  fi
  step "$who: git clone" git clone -q --no-hardlinks "$REPO" "$root$home/$CLONE" || return 1
  if [ "$who" != root ]; then
    in_root "$root" chown -R "$USER_NAME:$USER_NAME" "$home/$CLONE" || return 1
  fi
  mapfile -t cmds < <(bash "$SELF_REPO/.ci/readme-commands.sh" "$root$home/$CLONE/README.md")
  if [ "${#cmds[@]}" != 2 ]; then
    echo "README's 'Try it' block has ${#cmds[@]} commands, expected 2" >&2
    FAILED=1
    return 1
  fi
  find "$root" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort >"$LOGS/$who-toplevel-before"
  mount_into "$root" || return 1
  for cmd in "${cmds[@]}"; do
    n=$((n + 1))
    echo "$who \$ $cmd" >>"$LOGS/commands"
    # What the test suite (the last command) writes outside the clone and the temporary directory.
    find "$root$home" -path "$root$home/$CLONE" -prune -o -print | sort >"$LOGS/$who-home-before"
    step "$who: README command $n" in_root "$root" su - "$who" -c "cd ~/$CLONE && $cmd"
  done
  unmount_all
  find "$root$home" -path "$root$home/$CLONE" -prune -o -print | sort >"$LOGS/$who-home-after"
  find "$root" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort >"$LOGS/$who-toplevel-after"
  step "$who: nothing new at / (no /scratch)" \
    diff "$LOGS/$who-toplevel-before" "$LOGS/$who-toplevel-after"
  step "$who: tests wrote nothing in ~ outside the clone" \
    diff "$LOGS/$who-home-before" "$LOGS/$who-home-after"
  rm -rf --one-file-system "$root"
}

# All in one function, so that bash has read the whole script before it runs any of it (editing
# the checkout during a 30-minute run must not change what the run does).
main() {
  echo "fresh Debian $SUITE ($VARIANT) from $MIRROR in $WORKDIR"
  echo "repository: $REPO @ $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
  if [ -n "${REUSE_BASE:-}" ]; then  # development only: a base kept by an earlier run (KEEP=1)
    BASE=$REUSE_BASE
    echo "reusing the base root filesystem $BASE (debootstrap and apt-get skipped)"
  else
    step "debootstrap $SUITE" make_base || exit 1
    step "apt-get install ${PACKAGES[*]}" install_packages || exit 1
  fi
  if [ -n "$(host_cas)" ]; then
    step "trust this machine's extra CAs" trust_host_cas || exit 1
  fi
  try_as root
  try_as "$USER_NAME"
  echo "commands run (verbatim from the clone's README.md):"
  sort -u "$LOGS/commands" 2>/dev/null | sed 's/^/  /'
  if [ "$FAILED" = 0 ]; then echo "fresh-machine: all steps passed"; else echo "fresh-machine: FAILED"; fi
  return "$FAILED"
}

main "$@"; exit $?
