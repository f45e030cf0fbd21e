#!/usr/bin/env bash
# Builds (or reuses) the real-QEMU end-to-end test environment, from Debian packages only:
#   * a Debian trixie root (debootstrap --variant=minbase) holding qemu-system-x86 >= 10.1 from trixie-backports
#     (it has the vfio-user-pci client; the host's QEMU, if any, is not used and the host's apt sources are untouched);
#   * the guest: the kernel of the trixie root's linux-image-amd64 and a base initramfs (static busybox, lspci with
#     pci.ids, the gpiod tools, mkfs.ext4, nvme-cli, the kernel modules the tests load, and the /init in this folder);
#   * a benchmark initramfs to append to the base one: fio with its libraries (tens of MB, which the test boots do
#     not need to unpack).
# Tests append their own script to the base initramfs (see QemuGuest.java) and run QEMU through bin/qemu-system-x86_64,
# a wrapper that starts the root's QEMU with the root's own dynamic loader and libraries (no chroot, no root needed).
#
# Idempotent: everything is kept under ${VFU_QEMU_CACHE:-$HOME/.cache/vfio-user-java/qemu}; the Debian root is keyed on
# the package recipe below, the environment on this script and the files it packs, so a change rebuilds what it
# touches. Needs root (debootstrap, apt-get) only when something must be built.
# On success the last lines printed on stdout are KEY=VALUE pairs (also written to $ENV/env.properties):
#   VFU_QEMU_ENV, VFU_QEMU_BIN, VFU_QEMU_KERNEL, VFU_QEMU_INITRD, VFU_QEMU_BENCH_INITRD, VFU_QEMU_KERNEL_VERSION,
#   VFU_QEMU_VERSION
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${VFU_QEMU_CACHE:-${HOME:-/root}/.cache/vfio-user-java/qemu}"
mirror="${VFU_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "build-env.sh: ERROR: $*" >&2; exit 1; }
log() { echo "build-env.sh: $*" >&2; }

[ "$(uname -m)" = x86_64 ] || die "only x86_64 hosts are supported (this is $(uname -m))"

# --- The recipe of the Debian root. Change anything here and the root is rebuilt. ---
SUITE=trixie
BACKPORTS=trixie-backports
BACKPORT_PACKAGES="qemu-system-x86"
PACKAGES="linux-image-amd64 busybox-static pciutils pci.ids gpiod kmod xz-utils cpio e2fsprogs nvme-cli fio"
ROOT_RECIPE="v1
suite=$SUITE
backports=$BACKPORTS
backport_packages=$BACKPORT_PACKAGES
packages=$PACKAGES
mirror=$mirror"
# The modules the guest can load (with their dependencies), by module name.
GUEST_MODULES="gpio-pci-idio-16 nvme ext4"

sha() { sha256sum | cut -c1-16; }
root_key="$(printf '%s' "$ROOT_RECIPE" | sha)"
env_key="$( (cat "$0" "$here/init" "$here/vfu-lib.sh"; printf '%s' "$root_key") | sha)"
root="$cache/root-$root_key"
env="$cache/env-$env_key"

print_env() {
  cat "$env/env.properties"
}
# Marks the environment and its root as in use (their age decides when another recipe's build may drop them); a
# cache the caller cannot write to is fine.
mark_used() {
  touch "$env/.used" "$root/.used" 2>/dev/null || true
}

if [ -f "$env/.complete" ] && [ -f "$root/.complete" ]; then
  log "reusing $env"
  mark_used
  print_env
  exit 0
fi

mkdir -p "$cache" || die "cannot create the cache directory $cache"
exec 9>"$cache/.lock"
command -v flock >/dev/null && { flock 9 || die "cannot lock $cache/.lock"; }
# Another run may have built it while this one waited for the lock.
if [ -f "$env/.complete" ] && [ -f "$root/.complete" ]; then
  log "reusing $env"
  mark_used
  print_env
  exit 0
fi

[ "$(id -u)" = 0 ] || die "the environment at $env is missing and building it needs root (debootstrap, apt-get); run this script as root once, or point VFU_QEMU_CACHE at a built cache"

start=$(date +%s)

# --- 1. The Debian root with QEMU, the guest kernel and the guest tools. ---
in_root() { chroot "$root.tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
cleanup_mounts() {
  for m in "$root.tmp/proc" "$root.tmp/dev/pts" "$root.tmp/sys"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
}
if [ ! -f "$root/.complete" ]; then
  log "building the Debian root $root (about 2 minutes and 700 MB)"
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap on the host"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || die "cannot install debootstrap"
  fi
  # A debootstrap too old to know trixie would fail below; it knows it from the script named after the suite.
  [ -e "/usr/share/debootstrap/scripts/$SUITE" ] || ln -s sid "/usr/share/debootstrap/scripts/$SUITE" 2>/dev/null || true
  cleanup_mounts
  rm -rf "$root.tmp"
  trap cleanup_mounts EXIT
  debootstrap --variant=minbase "$SUITE" "$root.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -n 30 "$cache/debootstrap.log" >&2; die "debootstrap of $SUITE failed (log: $cache/debootstrap.log)"; }
  echo "deb $mirror $BACKPORTS main" >"$root.tmp/etc/apt/sources.list.d/backports.list"
  # No initramfs-tools run for the kernel package (we build our own initramfs), no recommends.
  mkdir -p "$root.tmp/etc/initramfs-tools"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root.tmp/etc/apt/apt.conf.d/90vfu"
  mount -t proc proc "$root.tmp/proc"
  {
    in_root apt-get update -qq &&
    in_root apt-get install -y -qq -t "$BACKPORTS" $BACKPORT_PACKAGES &&
    in_root apt-get install -y -qq $PACKAGES &&
    in_root apt-get clean
  } >"$cache/apt.log" 2>&1 || { cleanup_mounts; tail -n 30 "$cache/apt.log" >&2; die "installing packages in the $SUITE root failed (log: $cache/apt.log)"; }
  cleanup_mounts
  trap - EXIT
  # Some of QEMU's data files are absolute symlinks inside the root: give QEMU a copy with them resolved (the wrapper
  # below also points it at the firmware folders Debian's build searches: seabios and ipxe).
  chroot "$root.tmp" cp -rL /usr/share/qemu /opt/qemu-data || die "cannot copy QEMU's firmware"
  touch "$root.tmp/.complete"
  rm -rf "$root"
  mv "$root.tmp" "$root"
  log "Debian root built in $(( $(date +%s) - start )) s"
fi

# --- 2. The environment: QEMU wrapper, kernel, base initramfs. ---
log "building the environment $env"
rm -rf "$env.tmp"
mkdir -p "$env.tmp/bin"
kver="$(ls "$root/lib/modules" | sort -V | tail -n 1)"
[ -n "$kver" ] && [ -f "$root/boot/vmlinuz-$kver" ] || die "no kernel found in $root/boot"
cp "$root/boot/vmlinuz-$kver" "$env.tmp/vmlinuz"

ld_so="$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
cat >"$env.tmp/bin/qemu-system-x86_64" <<WRAP
#!/bin/sh
# Runs the QEMU of $root with that root's own loader and libraries.
export QEMU_MODULE_DIR="$root/usr/lib/x86_64-linux-gnu/qemu"
exec "$ld_so" --library-path "$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu" \\
  "$root/usr/bin/qemu-system-x86_64" -L "$root/opt/qemu-data" -L "$root/usr/share/seabios" -L "$root/usr/lib/ipxe/qemu" "\$@"
WRAP
chmod +x "$env.tmp/bin/qemu-system-x86_64"
qemu_version="$("$env.tmp/bin/qemu-system-x86_64" --version | head -n 1)" || die "the QEMU of $root does not start"
"$env.tmp/bin/qemu-system-x86_64" -device help 2>/dev/null | grep -q '"vfio-user-pci"' \
  || die "the QEMU of $root ($qemu_version) has no vfio-user-pci device"

# The initramfs archives are staged inside the root so that their tools (ldd, modprobe, xz, cpio) are the root's own.
stage_rel="/tmp/vfu-initramfs"
stage="$root$stage_rel"
new_stage() {
  rm -rf "$stage"
  mkdir -p "$stage"
}
copy_with_libs() { # absolute paths inside the root
  for f in "$@"; do
    [ -e "$root$f" ] || die "$f is missing from the root $root"
    mkdir -p "$stage$(dirname "$f")"
    cp -L "$root$f" "$stage$f"
    chroot "$root" ldd "$f" | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | while read -r lib; do
      mkdir -p "$stage$(dirname "$lib")"
      cp -L "$root$lib" "$stage$lib"
    done
    # A library ldd cannot find would make the tool fail in the guest only: fail here instead.
    ! chroot "$root" ldd "$f" | grep -q 'not found' || die "$f needs a library that is not in the root"
  done
}
pack_stage() { # the archive to write
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | chroot "$root" sh -c "cd $stage_rel && cpio -o -H newc --quiet -R 0:0") \
    | gzip -9 >"$1" || die "cannot pack $1"
  rm -rf "$stage"
}

# The base initramfs.
new_stage
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,mnt,vfu,usr/share/misc,lib/modules/"$kver"}
cp "$root/usr/bin/busybox" "$stage/bin/busybox"
copy_with_libs /usr/bin/lspci /usr/bin/setpci /usr/bin/gpiodetect /usr/bin/gpioinfo /usr/bin/gpioset \
  /usr/bin/gpioget /usr/bin/gpiomon /usr/bin/gpionotify /usr/sbin/mke2fs /usr/sbin/mkfs.ext4 /usr/sbin/nvme
cp -L "$root/usr/share/misc/pci.ids" "$stage/usr/share/misc/pci.ids"
cp -L "$root/etc/mke2fs.conf" "$stage/etc/mke2fs.conf"
# Modules: each wanted module and its dependencies, decompressed, in load order in /vfu/modules/NAME.order.
mkdir -p "$stage/vfu/modules"
for m in $GUEST_MODULES; do
  chroot "$root" modprobe -S "$kver" --show-depends "$m" >"$env.tmp/$m.deps" || die "no module $m in $kver"
  : >"$stage/vfu/modules/$m.order"
  awk '$1=="insmod"{print $2}' "$env.tmp/$m.deps" | while read -r ko; do
    out="/lib/modules/$kver/$(basename "$ko" | sed 's/\.\(xz\|zst\|gz\)$//')"
    case "$ko" in
      *.xz) xz -dc "$root$ko" >"$stage$out" ;;
      *.zst) chroot "$root" zstd -dc "$ko" >"$stage$out" ;;
      *.gz) gzip -dc "$root$ko" >"$stage$out" ;;
      *) cp "$root$ko" "$stage$out" ;;
    esac
    echo "$out" >>"$stage/vfu/modules/$m.order"
  done
done
# The module index (modules.dep, modules.alias...) of what was packed, for lspci -k's "Kernel modules" and libkmod.
for f in modules.builtin modules.builtin.modinfo modules.order; do
  [ -f "$root/lib/modules/$kver/$f" ] && cp "$root/lib/modules/$kver/$f" "$stage/lib/modules/$kver/"
done
chroot "$root" depmod -b "$stage_rel" "$kver" || die "depmod failed for the initramfs"
cp "$here/init" "$stage/init"
cp "$here/vfu-lib.sh" "$stage/vfu/lib.sh"
chmod +x "$stage/init"
pack_stage "$env.tmp/base-initramfs.cpio.gz"

# The benchmark initramfs (appended to the base one by the benchmarks only): fio links the libraries of every I/O
# engine Debian builds it with (ceph, gluster, rdma, nfs, nbd), which makes it large.
new_stage
copy_with_libs /usr/bin/fio
pack_stage "$env.tmp/bench-initramfs.cpio.gz"

cat >"$env.tmp/env.properties" <<PROPS
VFU_QEMU_ENV=$env
VFU_QEMU_BIN=$env/bin/qemu-system-x86_64
VFU_QEMU_KERNEL=$env/vmlinuz
VFU_QEMU_INITRD=$env/base-initramfs.cpio.gz
VFU_QEMU_BENCH_INITRD=$env/bench-initramfs.cpio.gz
VFU_QEMU_KERNEL_VERSION=$kver
VFU_QEMU_VERSION=$qemu_version
PROPS
sed -i "s#$env.tmp#$env#g" "$env.tmp/bin/qemu-system-x86_64"
touch "$env.tmp/.complete"
rm -rf "$env"
mv "$env.tmp" "$env"
# Drop environments and roots of other recipes that nobody used for a week. Not sooner: checkouts of different
# branches (with different recipes) share this cache, and a test of one may be starting QEMU from its root right now.
mark_used
for old in "$cache"/env-* "$cache"/root-*; do
  case "$old" in "$env"|"$root") ;; *.tmp) ;; *)
    # Used (or, for a directory from before the .used mark, built) within the last 7 days: kept.
    [ -e "$old" ] && [ -z "$(find "$old" "$old/.used" -maxdepth 0 -mtime -7 2>/dev/null)" ] && rm -rf "$old" ;;
  esac
done
log "environment ready in $(( $(date +%s) - start )) s"
print_env
