/**
 * Progress of long work (create with a cold boot, template build) on a terminal: one line on
 * stderr, rewritten in place with the elapsed time. Piped or redirected, it prints nothing:
 * scripts get the result on stdout and errors on stderr, no chatter.
 */
export interface Progress {
  /** The current step (shown with the time since start). */
  step(text: string): void;
  /** Clears the line. */
  done(): void;
}

export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { step: () => undefined, done: () => undefined };
  const t0 = Date.now();
  let text = '';
  const draw = () => stream.write(`\r\x1b[K${label}${text ? `: ${text}` : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const timer = setInterval(draw, 200);
  timer.unref();
  draw();
  return {
    step: (s) => {
      text = s;
      draw();
    },
    done: () => {
      clearInterval(timer);
      stream.write('\r\x1b[K');
    },
  };
}
