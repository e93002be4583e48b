/**
 * A reader that went away (`kiln events | head`) ends the command quietly: EPIPE on stdout or
 * stderr exits 0 with nothing printed, like the shell tools users pipe kiln into. Any other
 * error on them is still thrown.
 */
export function exitQuietlyOnClosedPipe(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
}
