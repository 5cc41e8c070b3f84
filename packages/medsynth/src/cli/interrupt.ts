/**
 * Graceful Ctrl-C for long commands: the first SIGINT clears the progress line, says what happens next and
 * aborts the returned signal (the work stops at its next safe point: a step, a job); a second one exits 130.
 */
export function abortOnSigint(message: string, clear: () => void): { signal: AbortSignal; release(): void } {
  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    clear();
    process.stderr.write(`${message}\n`);
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: abort.signal, release: () => process.off('SIGINT', onSigint) };
}
