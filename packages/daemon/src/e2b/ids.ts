/**
 * E2B sandbox ids: the 32 hex digits of a kiln id without its `sb-` prefix (E2B wants
 * `^[a-z0-9]+$`, and its host form `<port>-<id>.<domain>` splits on `-`).
 */
const E2B_ID_RE = /^[0-9a-f]{32}$/;

export const e2bIdOf = (kilnId: string): string => (kilnId.startsWith('sb-') ? kilnId.slice(3) : kilnId);

/** The kiln id of an E2B id (a kiln id is accepted too), or null if it cannot name a sandbox. */
export function kilnIdOf(e2bId: string): string | null {
  const hex = e2bId.startsWith('sb-') ? e2bId.slice(3) : e2bId;
  return E2B_ID_RE.test(hex) ? `sb-${hex}` : null;
}
