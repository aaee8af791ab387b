#!/bin/sh
# Builds the tiny test guest for the QEMU driver from Debian packages only (no other download):
# the Debian kernel extracted without installing it (uncompressed vmlinux, booted through the
# PVH entry: about twice as fast under TCG as the bzImage) and a busybox-static initramfs whose
# /init loads the virtio balloon and ACPI button modules, starts acpid (so system_powerdown
# works), prints MAGRATHEA-GUEST-READY on the serial console and then "tick N" every second.
# It also loads virtio_console and virtio_blk, mounts cgroup2 (jobs run under
# /sys/fs/cgroup/jobs) and starts the reference guest agent (magrathea-ga.sh) when the VM has an
# org.qemu.guest_agent.0 port: the agent stops and continues jobs, drops caches and turns the
# per-domain swap disk on and off for the `reclaim` preemption mode.
# With virtio disks (image-based domains) it first prints its context disk (MAGRATHEA-CONTEXT:
# host name, digest and mode of its token, the strings of its host certificate, MAC) and its
# root disk (MAGRATHEA-DISK: the base's marker line, the marker an earlier boot wrote), then
# writes a new marker.
#
# Usage: build-guest.sh [OUT_DIR]   (default: .cache/guest in the repository). Idempotent.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../.cache/guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Bumped whenever the initramfs changes, so an older build in the cache is rebuilt (the guest
# agent of the reclaim mode, v3; the disk and context checks of image-based domains).
version="3-disk-context-2"
if [ -s "$out/vmlinux" ] && [ -s "$out/initrd.cpio.gz" ] && [ "$(cat "$out/guest-version" 2>/dev/null)" = "$version" ]; then
  echo "guest already built in $out"
  exit 0
fi
for tool in apt-get dpkg-deb xz cpio gzip; do
  command -v "$tool" >/dev/null || { echo "build-guest: $tool is needed" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "build-guest: /bin/busybox (package busybox-static) is needed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
[ -n "$pkg" ] || { echo "build-guest: cannot find the kernel package behind linux-image-amd64" >&2; exit 1; }
apt-get download "$pkg" >/dev/null
dpkg-deb -x ./"$pkg"_*.deb kx
ver=$(ls kx/lib/modules | head -1)
vmlinuz=kx/boot/vmlinuz-$ver
off=$(grep -abo "$(printf '\3757zXZ\000')" "$vmlinuz" | head -1 | cut -d: -f1)
tail -c +$((off + 1)) "$vmlinuz" | xz -dc > vmlinux 2>/dev/null || true
[ -s vmlinux ] || { echo "build-guest: could not extract vmlinux from $vmlinuz" >&2; exit 1; }

mkdir -p rootfs/bin rootfs/proc rootfs/sys rootfs/dev rootfs/tmp rootfs/mod rootfs/etc
cp /bin/busybox rootfs/bin/busybox
mods=kx/lib/modules/$ver/kernel
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/virtio/virtio_balloon \
         drivers/input/evdev drivers/acpi/button drivers/char/virtio_console drivers/block/virtio_blk \
         drivers/cdrom/cdrom fs/isofs/isofs net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
  f=$(ls "$mods/$m".ko* 2>/dev/null | head -1)
  [ -n "$f" ] || { echo "build-guest: module $m not found" >&2; exit 1; }
  case "$f" in
    *.xz) xz -dc "$f" > "rootfs/mod/$(basename "$m").ko" ;;
    *) cp "$f" "rootfs/mod/$(basename "$m").ko" ;;
  esac
done
cat > rootfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_balloon evdev button \
         virtio_console virtio_blk; do
  insmod /mod/$m.ko 2>/dev/null
done
mkdir -p /sys/fs/cgroup /run
mount -t cgroup2 none /sys/fs/cgroup && mkdir -p /sys/fs/cgroup/jobs
i=0
while [ $i -lt 30 ] && ! ls /sys/class/virtio-ports/* >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done
magrathea-ga </dev/null >/dev/null 2>&1 &
i=0
while [ $i -lt 50 ] && ! ls /dev/input/event* >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\npoweroff -f\n' > /etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid -l /dev/null -c /etc/acpi
/bin/image-checks
echo "MAGRATHEA-GUEST-READY kernel=$(uname -r)"
n=0
while true; do
  n=$((n+1))
  echo "tick $n free=$(awk '/MemFree/ {print $2}' /proc/meminfo)kB"
  sleep 1
done
INIT
chmod +x rootfs/init
cat > rootfs/bin/image-checks <<'CHECKS'
#!/bin/busybox sh
# Image-based domains: the context disk (ISO 9660, label cidata) and the root disk (overlay).
for m in virtio_blk cdrom isofs failover net_failover virtio_net; do insmod /mod/$m.ko 2>/dev/null; done
i=0
while [ $i -lt 30 ] && ! ls /dev/vd? >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); done
mkdir -p /ctx
root=
for dev in /dev/vd?; do
  [ -b "$dev" ] || continue
  # The reclaim mode's swap disk is not the root disk.
  [ "$(cat /sys/block/${dev#/dev/}/serial 2>/dev/null)" = magrathea-swap ] && continue
  if mount -t iso9660 -o ro "$dev" /ctx 2>/dev/null; then
    c=/ctx/magrathea
    cert=$(sed '1d;$d' $c/host.pem 2>/dev/null | base64 -d 2>/dev/null | strings -n 4 | tr '\n' '|')
    mac=$(cat /sys/class/net/eth0/address 2>/dev/null || echo none)
    echo "MAGRATHEA-CONTEXT hostname=$(cat $c/hostname) token-sha256=$(sha256sum $c/token | cut -d' ' -f1) token-mode=$(stat -c %a:%u:%g $c/token) key-mode=$(stat -c %a $c/host.key 2>/dev/null) hook-api=$(cat $c/hook-api 2>/dev/null) mac=$mac nic-mac=$(cat $c/mac) cert=$cert"
  elif [ -z "$root" ]; then
    root=$dev
  fi
done
if [ -n "$root" ]; then
  base=$(dd if=$root bs=512 count=1 2>/dev/null | head -1)
  prev=$(dd if=$root bs=512 skip=8 count=1 2>/dev/null | head -1)
  echo "MAGRATHEA-DISK base=$base previous=$prev"
  printf 'written-at-boot-%s\n' "$(cat /proc/sys/kernel/random/uuid)" | dd of=$root bs=512 seek=8 conv=notrunc,fsync 2>/dev/null
  sync
  echo "MAGRATHEA-DISK wrote=$(dd if=$root bs=512 skip=8 count=1 2>/dev/null | head -1)"
fi
CHECKS
chmod +x rootfs/bin/image-checks
cp "$here/magrathea-ga.sh" rootfs/bin/magrathea-ga
chmod +x rootfs/bin/magrathea-ga
(cd rootfs && find . | cpio -o -H newc 2>/dev/null | gzip -1) > initrd.cpio.gz
mv vmlinux initrd.cpio.gz "$out/"
echo "$version" > "$out/guest-version"
echo "guest built in $out (kernel $ver)"
