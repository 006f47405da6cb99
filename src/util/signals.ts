// Ending a command cleanly on Ctrl-C or SIGTERM: one handler per run, the shell's exit codes.

/** Calls `handler` once on the first SIGINT (exit code 130) or SIGTERM (143); returns a function that disarms it. */
export function onTerminationSignal(handler: (exitCode: number) => void): () => void {
  const onInt = (): void => handler(130);
  const onTerm = (): void => handler(143);
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  return () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
}

/**
 * On the first SIGINT/SIGTERM: prints `note`, runs `cleanup` once (a lab's or a bench target's
 * teardown) and exits with the signal's code. `started()` tells the normal path whether the signal's
 * cleanup is already running, so it does not tear down twice.
 */
export function teardownOnSignal(cleanup: () => Promise<void>, note: string): { started(): boolean } {
  let running = false;
  onTerminationSignal((code) => {
    running = true;
    process.stdout.write(`\n${note}\n`);
    void cleanup().finally(() => process.exit(code));
  });
  return { started: () => running };
}
