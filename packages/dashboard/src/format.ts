/** Small formatting helpers for the tables. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export const age = (iso: string, now = Date.now()): string => duration(now - Date.parse(iso));

export const expiry = (iso: string | null, now = Date.now()): string => (iso ? (Date.parse(iso) <= now ? 'due' : `in ${duration(Date.parse(iso) - now)}`) : 'never');

export const percent = (p: number | null | undefined): string => (p === null || p === undefined ? '–' : `${p.toFixed(p < 10 ? 1 : 0)}%`);

export const time = (ms: number): string => new Date(ms).toLocaleTimeString();

export const labels = (l: Record<string, string>): string => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(', ');
