/**
 * What magrathead asks of a guest, as POSIX shell scripts run through the guest agent
 * (`guest-exec` of /bin/sh): stop and continue jobs, drop caches, turn the domain's swap disk
 * on and off, read the guest's memory figures. Pure: the scripts are built here and their
 * output parsed here, so both are tested without a guest. The scripts use only what busybox has.
 *
 * Jobs are selected either by a cgroup directory in the guest (every process in it and below,
 * which is how PBS's cgroup hook and the test guest place jobs) or by one process group (a
 * job's session leader): `JobSelector`. Nothing from a selector reaches the shell unchecked.
 */
import { meminfoBytes } from '../meminfo';

/** Which of the guest's processes are "the jobs". */
export type JobSelector = { readonly cgroup: string } | { readonly processGroup: number };

/** The serial number the per-domain swap disk carries, by which the guest finds it (virtio-blk: at most 20 bytes). */
export const SWAP_SERIAL = 'magrathea-swap';

/** A guest cgroup directory a selector may name: absolute, under /sys/fs/cgroup, plain characters, no `..`. */
const CGROUP_PATH = /^\/sys\/fs\/cgroup(\/[A-Za-z0-9_.:@+-]+)*$/;

/** Why a selector is unusable, or null when it is fine. */
export function selectorProblem(sel: JobSelector): string | null {
  if ('cgroup' in sel) {
    if (!CGROUP_PATH.test(sel.cgroup) || sel.cgroup.split('/').some((p) => p === '..' || p === '.'))
      return `${JSON.stringify(sel.cgroup)} is not a cgroup directory under /sys/fs/cgroup (letters, digits, _.:@+- only)`;
    return null;
  }
  if (!Number.isSafeInteger(sel.processGroup) || sel.processGroup <= 1)
    return `process group ${String(sel.processGroup)} is not a job's process group (an integer above 1)`;
  return null;
}

function checked(sel: JobSelector): JobSelector {
  const why = selectorProblem(sel);
  if (why) throw new Error(why);
  return sel;
}

/**
 * Sends SIGSTOP or SIGCONT to the selected jobs and prints `signalled N`. For a cgroup, two
 * passes catch a process forked while the first ran; a missing cgroup exits 3.
 */
export function signalJobsScript(sel: JobSelector, signal: 'STOP' | 'CONT', missingOk = false): string {
  const s = checked(sel);
  if ('processGroup' in s)
    return [
      `if kill -${signal} -${s.processGroup} 2>/dev/null; then echo "signalled 1"; else echo "signalled 0"; fi`,
    ].join('\n');
  return [
    `cg='${s.cgroup}'`,
    missingOk
      ? '[ -d "$cg" ] || { echo "signalled 0"; exit 0; }'
      : `[ -d "$cg" ] || { echo "no cgroup $cg in the guest"; exit 3; }`,
    'n=0',
    'for pass in 1 2; do',
    '  for f in $(find "$cg" -name cgroup.procs); do',
    '    for p in $(cat "$f"); do',
    `      kill -${signal} "$p" 2>/dev/null && [ "$pass" = 1 ] && n=$((n + 1))`,
    '    done',
    '  done',
    'done',
    'echo "signalled $n"',
  ].join('\n');
}

/**
 * The guest cgroup of one job (per-job suspension in CPU-counting mode): `<jobsCgroup>/<id>`,
 * the job's id with anything but [A-Za-z0-9_.:@+-] made `_` (a PBS id `123.server` stays as it
 * is, which is where PBS's cgroup hook puts a job: `…/pbs_jobs.service/jobid/123.server`).
 */
export function jobCgroup(jobsCgroup: string, jobId: string): JobSelector {
  return checked({ cgroup: `${jobsCgroup}/${jobId.replace(/[^A-Za-z0-9_.:@+-]/g, '_').replace(/^\.+/, '_')}` });
}

/** Number of processes a signalJobsScript reached, or null when its output does not say. */
export function parseSignalled(output: string): number | null {
  const m = /^signalled (\d{1,7})$/m.exec(output);
  return m ? Number(m[1]) : null;
}

/** Writes back dirty pages and drops the page cache, dentries and inodes. */
export const DROP_CACHES_SCRIPT = 'sync\necho 3 > /proc/sys/vm/drop_caches';

/** Script lines that set `$dev` to the swap disk (found by its serial), or exit 3 saying there is none. */
export const FIND_SWAP = [
  'dev=',
  'for b in /sys/block/vd*; do',
  `  [ "$(cat "$b/serial" 2>/dev/null)" = ${SWAP_SERIAL} ] && dev=/dev/\${b##*/}`,
  'done',
  `[ -n "$dev" ] || { echo "no disk with serial ${SWAP_SERIAL} in the guest"; exit 3; }`,
];

/** Turns the swap disk on (formatting it the first time); idempotent. */
export const SWAP_ON_SCRIPT = [
  ...FIND_SWAP,
  'grep -q "^$dev " /proc/swaps && exit 0',
  'swapon "$dev" 2>/dev/null && exit 0',
  'mkswap "$dev" >/dev/null && swapon "$dev"',
].join('\n');

/** Turns the swap disk off (its pages come back into RAM); idempotent. */
export const SWAP_OFF_SCRIPT = [...FIND_SWAP, 'grep -q "^$dev " /proc/swaps || exit 0', 'swapoff "$dev"'].join('\n');

export const MEMINFO_SCRIPT = 'cat /proc/meminfo';

export interface GuestMemInfo {
  readonly totalBytes: number;
  readonly availableBytes: number;
  readonly swapTotalBytes: number;
  readonly swapFreeBytes: number;
}

/** Parses /proc/meminfo (untrusted: missing or absurd figures are an error). */
export function parseMemInfo(text: string): GuestMemInfo {
  const kb = (key: string): number => {
    const bytes = meminfoBytes(text, key);
    if (bytes === null) throw new Error(`the guest's /proc/meminfo has no ${key}`);
    return bytes;
  };
  const totalBytes = kb('MemTotal');
  const availableBytes = kb('MemAvailable');
  const swapTotalBytes = kb('SwapTotal');
  const swapFreeBytes = kb('SwapFree');
  if (availableBytes > totalBytes || swapFreeBytes > swapTotalBytes)
    throw new Error("the guest's /proc/meminfo figures do not add up");
  return { totalBytes, availableBytes, swapTotalBytes, swapFreeBytes };
}
