#!/bin/sh
# Brings the OpenPBS lab up for the real-PBS suite (idempotent: about a second when it runs) and
# writes .cache/pbs-lab.state: "ok", or "skip: <reason>".
set -u
cd "$(dirname "$0")/../.."
mkdir -p .cache
state() { echo "$*" > .cache/pbs-lab.state; echo "$*"; }
if [ "${MAGRATHEA_SKIP_PBS_LAB:-}" = 1 ]; then state "skip: MAGRATHEA_SKIP_PBS_LAB=1"; exit 0; fi
LAB=""
for d in "${MAGRATHEA_PBS_VENDOR:-}" "$(pwd)/../shared/vendor/openpbs" /work/shared/vendor/openpbs; do
  if [ -n "$d" ] && [ -x "$d/lab.sh" ]; then LAB="$d/lab.sh"; break; fi
done
[ -n "$LAB" ] || { state "skip: no OpenPBS lab (../shared/vendor/openpbs/lab.sh) beside the checkout"; exit 0; }
[ "$(id -u)" = 0 ] || { state "skip: the OpenPBS lab needs root"; exit 0; }
MOMS="nodea-meta:11 nodea-egee:12 nodea-priv:13 nodeb-meta:21 nodeb-egee:22 nodeb-priv:23"
# The mom prefix must outlive this checkout (lab.sh saves it for later runs).
PREFIX_DIR=/var/lib/magrathea-pbslab
mkdir -p $PREFIX_DIR && install -m 0755 test/pbs/mom-in-cgroup.sh $PREFIX_DIR/mom-in-cgroup.sh
PREFIX=$PREFIX_DIR/mom-in-cgroup.sh
in_cgroup() { # every mom runs inside its domain's freezer group
  for m in nodea-meta nodea-egee nodea-priv nodeb-meta nodeb-egee nodeb-priv; do
    node=${m%%-*}; dom=${m#*-}
    f=/sys/fs/cgroup/freezer/magrathea-pbslab-$node/$dom/cgroup.procs
    grep -q . "$f" || return 1
    # thawed, so the lab is usable
    [ "$(cat /sys/fs/cgroup/freezer/magrathea-pbslab-$node/$dom/freezer.state)" = THAWED ] ||
      echo THAWED > /sys/fs/cgroup/freezer/magrathea-pbslab-$node/$dom/freezer.state
  done
}
if [ -d /sys/fs/cgroup/freezer ] && ! in_cgroup; then
  "$LAB" down >/dev/null 2>&1 || true
fi
if ! "$LAB" up --moms "$MOMS" --mom-prefix "$PREFIX" >/dev/null 2>.cache/pbs-lab.err; then
  state "skip: lab.sh up failed: $(tail -1 .cache/pbs-lab.err) (see /tmp/pbs-lab.log)"; exit 0
fi
in_cgroup || { state "skip: the lab moms are not inside their cgroups (cgroup v1 freezer needed)"; exit 0; }
echo "$LAB" > .cache/pbs-lab.path
state "ok"
