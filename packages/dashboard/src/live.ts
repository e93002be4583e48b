/** Hooks for data that changes: polling, and kilnd's NDJSON event stream. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { follow, type KilnEvent } from './api.js';

/** Calls `fn` now and every `ms` while mounted (never two at once). */
export function usePoll(fn: () => Promise<void>, ms: number, deps: unknown[] = []): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      await ref.current().catch(() => undefined);
      if (!stop) timer = setTimeout(() => void tick(), ms);
    };
    void tick();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, deps);
}

/**
 * Follows /v1/events (all the key may see, or one sandbox) and calls `onEvent` for each new
 * one; reconnects after a pause if the stream ends. Returns the events seen (newest last, capped).
 */
export function useEvents(onEvent: (e: KilnEvent) => void, sandbox?: string, keep = 200): KilnEvent[] {
  const [events, setEvents] = useState<KilnEvent[]>([]);
  const cb = useRef(onEvent);
  cb.current = onEvent;
  useEffect(() => {
    const ctl = new AbortController();
    let after = 0;
    const run = async () => {
      while (!ctl.signal.aborted) {
        const q = new URLSearchParams({ follow: 'true', after: String(after), ...(sandbox ? { sandbox } : {}) });
        await follow(`/v1/events?${q}`, (line) => {
          if (!line.trim()) return;
          const e = JSON.parse(line) as KilnEvent;
          after = Math.max(after, e.seq);
          setEvents((old) => [...old.slice(-(keep - 1)), e]);
          cb.current(e);
        }, ctl.signal).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 2000));
      }
    };
    void run();
    return () => ctl.abort();
  }, [sandbox]);
  return events;
}
