/**
 * A reader that stops early (`fhir-edge demo patients | head -1`) closes the CLI's stdout, and
 * the next write fails with EPIPE, which Node raises as an unhandled 'error' event: a stack
 * trace on stderr. A C tool would die of SIGPIPE there, silently; the CLI ends there too, with
 * exit code 0, since the reader has taken what it wanted. Commands print what they did after
 * doing it, so ending at a failed write leaves no step half-done.
 */
export function endQuietlyWhenOutputCloses(streams: readonly NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE") throw e;
      process.exit(0);
    });
  }
}
