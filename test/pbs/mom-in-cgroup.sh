#!/bin/sh
# lab.sh --mom-prefix: starts a lab mom inside the cgroups of the magrathead `cgroup` driver, so
# that the domain's driver operations (freeze, CPU shares, memory limit) act on the mom and on the
# jobs it starts. The mom's host name is <node>-<domain> (e.g. nodea-meta); its groups are
# <controller>/<MAGRATHEA_LAB_CGROUP_ROOT>-<node>/<domain> (root default magrathea-pbslab).
# `ip netns exec` gives the mom a fresh /sys without the cgroup mounts: each v1 hierarchy is
# mounted privately for a moment, joined, and unmounted again.
set -eu
name=$(hostname)
node=${name%%-*}
domain=${name#*-}
root=${MAGRATHEA_LAB_CGROUP_ROOT:-magrathea-pbslab}
mnt=$(mktemp -d /tmp/magrathea-mom-cg.XXXXXX)
for c in freezer cpu cpuacct memory; do
  mount -t cgroup -o "$c" cgroup "$mnt"
  mkdir -p "$mnt/$root-$node/$domain"
  echo $$ > "$mnt/$root-$node/$domain/cgroup.procs"
  umount "$mnt"
done
rmdir "$mnt"
exec "$@"
