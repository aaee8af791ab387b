#!/bin/sh
# Test prerequisites that npm cannot install: QEMU and the tiny guest the QEMU driver tests boot,
# libvirt, systemd-analyze for the unit checks,
# and Debian's Chromium for the status page's browser tests (playwright-core drives it; no
# browser is ever downloaded).
# Installs the Debian packages when they are missing and we may (root with apt-get), then builds
# the guest into .cache/guest (idempotent: seconds the first time, nothing afterwards).
# Without them the QEMU suite is skipped with a message; CI sets MAGRATHEA_REQUIRE_QEMU=1 so
# a skip there is a failure.
set -u
cd "$(dirname "$0")/.."
need=""
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86 qemu-utils"
[ -x /bin/busybox ] || need="$need busybox-static"
command -v cpio >/dev/null || need="$need cpio"
command -v virsh >/dev/null || need="$need libvirt-clients"
command -v libvirtd >/dev/null || need="$need libvirt-daemon libvirt-daemon-driver-qemu"
# systemd-analyze verifies the units in packaging/systemd (systemd need not run as init).
command -v systemd-analyze >/dev/null || need="$need systemd"
# genisoimage builds the domains' context disks (ISO 9660, NoCloud).
command -v genisoimage >/dev/null || need="$need genisoimage"
[ -x /usr/bin/chromium ] || need="$need chromium"
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test setup: installing$need"
    (apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 ||
      (apt-get update -qq && apt-get install -y -qq --no-install-recommends $need >/dev/null)) ||
      echo "test setup: could not install$need; the QEMU (or browser) tests will be skipped" >&2
  else
    echo "test setup: missing$need (install them as root); the QEMU (or browser) tests will be skipped" >&2
  fi
fi
if command -v qemu-system-x86_64 >/dev/null && [ -x /bin/busybox ]; then
  sh test/guest/build-guest.sh .cache/guest 2>&1 | grep -v '^W: Download is performed unsandboxed' ||
    echo "test setup: the guest could not be built; the QEMU tests will be skipped" >&2
fi

# The real OpenPBS lab (../shared/vendor/openpbs/lab.sh): a server, scheduler and comm, and six moms
# in network namespaces standing for the domains of two physical nodes (nodea, nodeb), each mom
# inside the cgroups of magrathead's cgroup driver. The real-PBS suite (test/pbs) reads
# .cache/pbs-lab.state: "ok", or "skip: <reason>". MAGRATHEA_SKIP_PBS_LAB=1 skips it.
sh test/pbs/lab-up.sh > .cache/pbs-lab.log 2>&1 || true
cat .cache/pbs-lab.state 2>/dev/null | sed 's/^/test setup: OpenPBS lab: /'
exit 0
