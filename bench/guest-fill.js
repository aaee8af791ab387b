// @ts-check
'use strict';
/**
 * The reclaim test's and benchmark's batch job, run in the test guest: 300 MiB of data in tmpfs
 * (4 MiB of random bytes, 75 numbered copies), a process in the jobs cgroup, and the data's
 * checksum printed last.
 */
const FILL_BATCH = [
  'mkdir -p /fill /sys/fs/cgroup/jobs/j1',
  'mount -t tmpfs -o size=460m tmpfs /fill',
  'head -c 4194304 /dev/urandom > /fill/seed',
  'i=0; while [ $i -lt 75 ]; do echo "$i"; cat /fill/seed; i=$((i+1)); done > /fill/data',
  'rm /fill/seed',
  "setsid sh -c 'echo $$ > /sys/fs/cgroup/jobs/j1/cgroup.procs; exec sleep 1000000' </dev/null >/dev/null 2>&1 &",
  "md5sum /fill/data | cut -d' ' -f1",
].join('\n');

module.exports = { FILL_BATCH };
