/**
 * The TCG translation cache of each VM (QEMU `-accel tcg,tb-size=`), used only without KVM.
 *
 * QEMU flushes the whole cache when it fills and translates every block again. A `docker run`
 * in a guest executes dockerd, containerd, two shims, the CLI and the runtime: with 128 MiB the
 * cache flushed about twice per `docker run` and each run took 3–7 s; with 512 MiB it never
 * flushed and runs took 1.3–2 s (docs/image.md, "Docker in the guest"). The cache is host
 * memory touched only as code is translated: an idle sandbox does not grow it.
 */
export const DEFAULT_TCG_TB_SIZE_MIB = 512;
export const MIN_TCG_TB_SIZE_MIB = 32;
export const MAX_TCG_TB_SIZE_MIB = 4096;

/** The size a flag or $KILN_TCG_TB_SIZE_MIB asks for, checked; the default when neither is set. */
export function tcgTbSizeMiB(value: string | undefined = process.env.KILN_TCG_TB_SIZE_MIB, what = '$KILN_TCG_TB_SIZE_MIB'): number {
  if (value === undefined || value === '') return DEFAULT_TCG_TB_SIZE_MIB;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < MIN_TCG_TB_SIZE_MIB || n > MAX_TCG_TB_SIZE_MIB) {
    throw new Error(`${what} must be a whole number of MiB from ${MIN_TCG_TB_SIZE_MIB} to ${MAX_TCG_TB_SIZE_MIB} (got ${value})`);
  }
  return n;
}
