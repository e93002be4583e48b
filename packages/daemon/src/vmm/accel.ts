/**
 * Accelerator choice. `auto` picks KVM only where the CPU advertises hardware virtualisation
 * (vmx/svm) AND /dev/kvm can be opened; otherwise TCG. The paravirtual nested KVM found on
 * some cloud hosts (kvm-pvm) exposes a working /dev/kvm without vmx/svm and hangs stock guest
 * kernels, so the CPU flags are what decide.
 */
import { closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { KilnError } from '../errors.js';

export type Accel = 'kvm' | 'tcg';
export type AccelRequest = Accel | 'auto';

export interface AccelChoice {
  accel: Accel;
  reason: string;
}

export interface AccelProbeInput {
  cpuinfo?: string;
  kvmDevice?: string;
  pvmModule?: string;
}

function hostCpuFlags(cpuinfo: string): Set<string> {
  const line = cpuinfo.split('\n').find((l) => l.startsWith('flags'));
  return new Set((line?.split(':')[1] ?? '').trim().split(/\s+/));
}

function canOpenKvm(path: string): boolean {
  try {
    const fd = openSync(path, constants.O_RDWR);
    closeSync(fd);
    return true;
  } catch {
    return false;
  }
}

export function chooseAccel(request: AccelRequest, input: AccelProbeInput = {}): AccelChoice {
  const kvmDevice = input.kvmDevice ?? '/dev/kvm';
  const cpuinfo = input.cpuinfo ?? readFileSync('/proc/cpuinfo', 'utf8');
  const flags = hostCpuFlags(cpuinfo);
  const hwVirt = flags.has('vmx') || flags.has('svm');
  const kvmOk = canOpenKvm(kvmDevice);
  const pvm = existsSync(input.pvmModule ?? '/sys/module/kvm_pvm');

  if (request === 'tcg') return { accel: 'tcg', reason: 'forced by --accel tcg' };
  if (request === 'kvm') {
    if (!kvmOk) {
      throw new KilnError('ACCEL_UNAVAILABLE', `--accel kvm requested but ${kvmDevice} cannot be opened`, { status: 503 });
    }
    return { accel: 'kvm', reason: 'forced by --accel kvm' };
  }
  if (hwVirt && kvmOk) return { accel: 'kvm', reason: `CPU has ${flags.has('vmx') ? 'vmx' : 'svm'} and ${kvmDevice} works` };
  if (!hwVirt && kvmOk) {
    return {
      accel: 'tcg',
      reason: `${kvmDevice} exists but the CPU has no vmx/svm${pvm ? ' (paravirtual kvm-pvm, which hangs stock kernels)' : ''}; using TCG`,
    };
  }
  return { accel: 'tcg', reason: hwVirt ? `${kvmDevice} cannot be opened; using TCG` : 'no hardware virtualisation; using TCG' };
}

/** Host TSC frequency in kHz, from /proc/cpuinfo, for tsc_early_khz= under TCG. */
export function hostTscKhz(cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')): number | null {
  const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo);
  if (!m?.[1]) return null;
  return Math.round(Number(m[1]) * 1000);
}
