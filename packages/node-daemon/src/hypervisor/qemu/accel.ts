/**
 * Chooses QEMU's accelerator: KVM only when it really works, TCG otherwise. `/dev/kvm` existing
 * is not enough (reference/hypervisors.md §0): on these hosts it is the kvm_pvm backend, which
 * runs only PVM guest kernels, and the CPU has no vmx/svm flags. The decision is a pure
 * function of facts read from the host, so it is unit-tested without the host.
 */
import * as fs from 'node:fs';

export interface AccelFacts {
  /** /dev/kvm exists and can be opened read-write. */
  readonly devKvmUsable: boolean;
  /** /proc/cpuinfo lists vmx or svm. */
  readonly cpuHasVirt: boolean;
  /** The kvm_pvm module is loaded (software virtualisation backend). */
  readonly kvmPvm: boolean;
}

export type AccelChoice = { readonly accel: 'kvm' | 'tcg'; readonly why: string };

export function chooseAccel(wanted: 'auto' | 'kvm' | 'tcg', f: AccelFacts): AccelChoice {
  if (wanted === 'tcg') return { accel: 'tcg', why: 'configured' };
  const kvmOk = f.devKvmUsable && f.cpuHasVirt && !f.kvmPvm;
  const reason = !f.devKvmUsable
    ? '/dev/kvm is missing or not writable'
    : f.kvmPvm
      ? '/dev/kvm is the kvm_pvm backend (runs only PVM guest kernels)'
      : !f.cpuHasVirt
        ? 'the CPU has no vmx/svm flags'
        : 'KVM works';
  if (wanted === 'kvm') return { accel: 'kvm', why: kvmOk ? 'configured; KVM works' : `configured although ${reason}` };
  return kvmOk ? { accel: 'kvm', why: reason } : { accel: 'tcg', why: `TCG because ${reason}` };
}

/** Reads the facts from this host. */
export function readAccelFacts(): AccelFacts {
  let devKvmUsable = false;
  try {
    fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
    devKvmUsable = true;
  } catch {
    devKvmUsable = false;
  }
  let cpuHasVirt = false;
  try {
    cpuHasVirt = /^flags\s*:.*\b(vmx|svm)\b/m.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    cpuHasVirt = false;
  }
  const kvmPvm = fs.existsSync('/sys/module/kvm_pvm');
  return { devKvmUsable, cpuHasVirt, kvmPvm };
}
