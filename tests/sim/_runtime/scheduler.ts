/**
 * The simulation's event loop: virtual time, one ordered queue of events, and simulated
 * processes that own them. Each event runs alone and then every microtask it caused runs
 * to completion (a real macrotask boundary, through a MessageChannel) before the next
 * event, so the code an event wakes sees the time of that event, and one seed always
 * gives the same interleaving. The boundary is node's `setImmediate`: a MessageChannel
 * message is no boundary in Deno (it is dispatched amid the microtasks), and a zero
 * timeout is clamped to milliseconds.
 *
 * A process ({@linkcode SimProcess}) owns the events it schedules (timers) and the events
 * that complete its I/O (disk and network). Pausing it (SIGSTOP) holds its due events until
 * it resumes; killing it drops them for good, so the code of a dead incarnation never
 * runs again, whatever promises it was waiting on.
 */
import { setImmediate } from "node:timers";
import type { Clock } from "../../../lib/util/clock.ts";
import type { TimerHandle, Timers } from "../../../lib/runtime/mod.ts";

/** One scheduled callback. */
interface SimEvent {
  at: number;
  seq: number;
  owner: SimProcess | null;
  fn: () => void;
  cancelled: boolean;
}

/** A binary min-heap of events by (at, seq). */
class EventHeap {
  readonly #items: SimEvent[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): SimEvent | undefined {
    return this.#items[0];
  }

  push(e: SimEvent): void {
    const a = this.#items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): SimEvent | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** What a simulated process is doing. */
export type ProcessState = "running" | "paused" | "dead";

/** Virtual wall-clock start: the clocks read this plus the virtual time. */
export const SIM_EPOCH_MS = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/** The event loop of one simulation run. */
export class Scheduler {
  #now = 0;
  #seq = 0;
  readonly #heap = new EventHeap();
  #current: SimProcess | null = null;
  #events = 0;
  /** Errors thrown by event callbacks (a bug in the code under test or in the sim). */
  readonly failures: unknown[] = [];

  /** Virtual milliseconds since the run began. */
  get now(): number {
    return this.#now;
  }

  /** Events run so far. */
  get eventCount(): number {
    return this.#events;
  }

  /** The process whose event (and its microtasks) is running now; null for the harness. */
  get current(): SimProcess | null {
    return this.#current;
  }

  /** Runs `fn` as `owner` after `delayMs` of virtual time. */
  schedule(owner: SimProcess | null, delayMs: number, fn: () => void): SimEvent {
    const e: SimEvent = {
      at: this.#now + Math.max(0, delayMs),
      seq: this.#seq++,
      owner,
      fn,
      cancelled: false,
    };
    this.#heap.push(e);
    return e;
  }

  /** Puts back events a paused process held, due now, in their original order. */
  requeue(events: SimEvent[]): void {
    for (const e of events) {
      e.at = this.#now;
      this.#heap.push(e);
    }
  }

  /** The time of the next event, or Infinity when nothing is scheduled. */
  nextEventAt(): number {
    return this.#heap.peek()?.at ?? Infinity;
  }

  /**
   * Runs the next event and everything it causes; false when no event is left. Events of
   * paused processes are set aside, those of dead ones dropped.
   */
  async step(): Promise<boolean> {
    for (;;) {
      const e = this.#heap.pop();
      if (e === undefined) return false;
      if (e.cancelled) continue;
      const owner = e.owner;
      if (owner !== null && owner.state === "dead") continue;
      if (e.at > this.#now) this.#now = e.at;
      if (owner !== null && owner.state === "paused") {
        owner.hold(e);
        continue;
      }
      this.#events++;
      this.#current = owner;
      try {
        e.fn();
      } catch (err) {
        this.failures.push(err);
      }
      await this.#drain();
      this.#current = null;
      return true;
    }
  }

  /** Runs events until virtual time `untilMs` (events at that time included). */
  async runUntil(untilMs: number): Promise<void> {
    while (this.nextEventAt() <= untilMs) await this.step();
    if (this.#now < untilMs) this.#now = untilMs;
  }

  /**
   * Runs events until `done()` holds (checked after every event) or `timeoutMs` of virtual
   * time passes; returns whether it held.
   */
  async runUntilTrue(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = this.#now + timeoutMs;
    while (!done()) {
      if (this.nextEventAt() > deadline) {
        this.#now = Math.max(this.#now, deadline);
        return done();
      }
      await this.step();
    }
    return true;
  }

  /** Lets every pending microtask run (a macrotask boundary). */
  #drain(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Ends the run (kept for symmetry with the harness's close; nothing to release). */
  close(): void {}
}

/**
 * One incarnation of a simulated process: its clock and timers run on the scheduler, and
 * the disk and network complete its I/O with events it owns.
 */
export class SimProcess {
  readonly name: string;
  readonly scheduler: Scheduler;
  #state: ProcessState = "running";
  #held: SimEvent[] = [];
  readonly #timers = new Map<number, SimEvent>();
  #nextTimer = 1;
  readonly #onDeath: (() => void)[] = [];
  readonly clock: Clock;
  readonly timers: Timers;

  constructor(scheduler: Scheduler, name: string) {
    this.scheduler = scheduler;
    this.name = name;
    this.clock = { nowMs: () => Math.floor(SIM_EPOCH_MS + scheduler.now) };
    this.timers = {
      setTimeout: (fn, ms) => this.#setTimer(fn, ms, false),
      clearTimeout: (h) => this.#clearTimer(h),
      setInterval: (fn, ms) => this.#setTimer(fn, ms, true),
      clearInterval: (h) => this.#clearTimer(h),
      setImmediate: (fn) => void this.#setTimer(fn, 0, false),
    };
  }

  get state(): ProcessState {
    return this.#state;
  }

  /** Runs `fn` as this process after `delayMs` (I/O completions use this). */
  schedule(delayMs: number, fn: () => void): void {
    if (this.#state === "dead") return;
    this.scheduler.schedule(this, delayMs, fn);
  }

  /** Called by the scheduler for an event due while paused. */
  hold(e: SimEvent): void {
    this.#held.push(e);
  }

  /** SIGSTOP: nothing of this process runs until {@linkcode resume}. */
  pause(): void {
    if (this.#state === "running") this.#state = "paused";
  }

  /** SIGCONT: events that came due while paused run now, in order. */
  resume(): void {
    if (this.#state !== "paused") return;
    this.#state = "running";
    const held = this.#held;
    this.#held = [];
    this.scheduler.requeue(held);
  }

  /** kill -9: no event of this incarnation runs again; death hooks (sockets, locks) run. */
  kill(): void {
    if (this.#state === "dead") return;
    this.#state = "dead";
    this.#held = [];
    this.#timers.clear();
    for (const hook of this.#onDeath.splice(0)) hook();
  }

  /** Registers a hook run when the process dies (the kernel closing its resources). */
  onDeath(hook: () => void): void {
    if (this.#state === "dead") hook();
    else this.#onDeath.push(hook);
  }

  #setTimer(fn: () => void, ms: number, repeat: boolean): TimerHandle {
    const id = this.#nextTimer++;
    if (this.#state === "dead") return id;
    // Intervals run at least a millisecond apart (as the platform's do), or one of 0 ms
    // would stop virtual time.
    const delay = Math.max(repeat ? 1 : 0, Number.isFinite(ms) ? ms : 0);
    const arm = (): void => {
      const e = this.scheduler.schedule(this, delay, () => {
        if (repeat) arm();
        else this.#timers.delete(id);
        fn();
      });
      this.#timers.set(id, e);
    };
    arm();
    return id;
  }

  #clearTimer(handle: TimerHandle | undefined): void {
    if (typeof handle !== "number") return;
    const e = this.#timers.get(handle);
    if (e) e.cancelled = true;
    this.#timers.delete(handle);
  }
}
