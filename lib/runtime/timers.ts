/**
 * Timers, injected wherever behaviour waits (timeouts, intervals, back-offs) so that a
 * simulation can run them on virtual time. {@linkcode systemTimers} are the real ones.
 */

/** An opaque timer id (the platform's own, or a simulation's number). */
export type TimerHandle = number | object;

/** The timer functions a subsystem may use. */
export interface Timers {
  /** Calls `fn` once after `ms` milliseconds (at least 0). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timeout; `undefined` and spent handles are ignored. */
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Calls `fn` every `ms` milliseconds until cleared. */
  setInterval(fn: () => void, ms: number): TimerHandle;
  /** Cancels an interval; `undefined` and spent handles are ignored. */
  clearInterval(handle: TimerHandle | undefined): void;
  /**
   * Calls `fn` once soon, after the I/O callbacks already due: a macrotask without the
   * timer clamp (`setTimeout(fn, 0)` waits about 2 ms in Deno 2.9, measured here).
   */
  setImmediate(fn: () => void): void;
}

/** The platform's timers. */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
  setImmediate: (fn) => void setImmediate(fn),
};

/** Resolves on the next macrotask of `timers` (other work, I/O included, runs first). */
export function yieldToEventLoop(timers: Timers): Promise<void> {
  return new Promise((resolve) => timers.setImmediate(resolve));
}

/** Resolves after `ms` milliseconds of `timers`' time. */
export function sleep(timers: Timers, ms: number): Promise<void> {
  return new Promise((resolve) => timers.setTimeout(resolve, ms));
}
