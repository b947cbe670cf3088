/** Deadlines for promises that have none of their own (network requests). */
import { systemTimers, type Timers } from "../runtime/timers.ts";

/** The error {@linkcode withTimeout} rejects with. */
export class TimeoutError extends Error {
  /** The deadline that passed. */
  readonly ms: number;
  constructor(ms: number) {
    super(`No answer within ${ms} ms`);
    this.name = "TimeoutError";
    this.ms = ms;
  }
}

/**
 * `p`, or a rejection with {@linkcode TimeoutError} after `ms` (calling `onTimeout` first,
 * e.g. to close the connection the answer would have come on). The timer is cleared
 * when `p` settles.
 */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  onTimeout?: () => void,
  timers: Timers = systemTimers,
): Promise<T> {
  let timer: ReturnType<Timers["setTimeout"]> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = timers.setTimeout(() => {
      onTimeout?.();
      reject(new TimeoutError(ms));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => timers.clearTimeout(timer));
}
