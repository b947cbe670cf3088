/**
 * Runs `fn` over `items` with at most `limit` calls in flight, and waits for all of them;
 * then throws the first failure, if any (the others still ran to their end, so nothing is
 * left half-done in the background).
 */
export async function forEachConcurrently<T>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const failures: unknown[] = [];
  const worker = async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      try {
        await fn(next.value);
      } catch (err) {
        failures.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failures.length > 0) throw failures[0];
}

/**
 * Runs an async task at most once at a time and keeps its success: callers during a run
 * share it, callers after a success get the same resolved promise, and a failed run is
 * forgotten so that the next caller tries again (creating an internal topic on first use).
 */
export class OnceUntilSuccess {
  #run: Promise<void> | null = null;

  /** The current or successful run, or a new run of `task`. */
  run(task: () => Promise<void>): Promise<void> {
    if (this.#run) return this.#run;
    const run = task();
    this.#run = run;
    run.catch(() => {
      if (this.#run === run) this.#run = null;
    });
    return run;
  }
}
