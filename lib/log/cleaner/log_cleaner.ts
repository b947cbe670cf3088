/**
 * The log cleaner of a node (Kafka's LogCleaner with one thread): every `backoffMs` it
 * looks at the compacted logs the node holds, picks the dirtiest one whose dirty ratio
 * reaches its `min.cleanable.dirty.ratio` (or that holds a record older than
 * `max.compaction.lag.ms`), and cleans it ({@linkcode cleanLog}); then looks again at
 * once. Cleaning shares the event loop with produce and fetch: it works in slices and
 * honours an I/O rate (`ioMaxBytesPerSecond`). A log whose cleaning fails is left alone
 * (logged) until the node restarts, as Kafka marks a partition uncleanable.
 */
import type { Clock } from "../../util/clock.ts";
import { getLogger } from "../../util/log.ts";
import { sleep, type Timers } from "../../runtime/timers.ts";
import type { PartitionLog } from "../partition_log.ts";
import { type AbortedTxn, cleanableState, cleanLog, type CleanResult } from "./clean_log.ts";

const log = getLogger(["tidelog", "log", "cleaner"]);

/** A compacted log the cleaner may clean. */
export interface CleanerTarget {
  readonly name: string;
  readonly log: PartitionLog;
  /**
   * Nothing at or above it is cleaned: the partition's last stable offset (its high
   * watermark, or the start of the oldest undecided transaction).
   */
  readonly maxOffset: number;
  /** Each producer's last batch's last offset. */
  producerLastOffsets(): ReadonlySet<number>;
  /** The aborted transactions of the log (their records are removed by a cleaning). */
  abortedTransactions?(): readonly AbortedTxn[];
}

/** Options of {@linkcode LogCleaner}. */
export interface LogCleanerOptions {
  /** The compacted logs now (called before each pick). */
  targets(): Iterable<CleanerTarget>;
  clock: Clock;
  timers: Timers;
  /** Memory for the key → offset map (`log.cleaner.dedupe.buffer.size`). @default 128 MiB */
  dedupeBufferBytes?: number;
  /** Bytes read and written per second at most; 0: no limit. @default 0 */
  ioMaxBytesPerSecond?: number;
  /** Pause when no log needs cleaning (`log.cleaner.backoff.ms`). @default 15000 */
  backoffMs?: number;
}

/** What the metrics report per compacted log. */
export interface CleanerStats {
  dirtyRatio: number;
  /** The cleaner checkpoint: offsets below it have been cleaned. */
  lastCleanedOffset: number;
  bytesCleaned: number;
  /** Wall-clock time the last cleaning ended; -1 when never. */
  lastRunMs: number;
}

export class LogCleaner {
  readonly #o: LogCleanerOptions;
  readonly #stats = new Map<PartitionLog, { bytesCleaned: number; lastRunMs: number }>();
  readonly #failed = new WeakSet<PartitionLog>();
  /** Logs whose last cleaning made no progress, with when to look at them again. */
  readonly #idleUntil = new WeakMap<PartitionLog, number>();
  #closed = false;
  #wake: (() => void) | null = null;
  #loop: Promise<void> | null = null;
  /** The I/O budget's current one-second window. */
  #windowStart = 0;
  #windowBytes = 0;

  constructor(options: LogCleanerOptions) {
    this.#o = options;
  }

  /** Starts the cleaning loop. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Looks for work now instead of at the end of the back-off (tests, config changes). */
  poke(): void {
    this.#wake?.();
  }

  /** The figures of one log (for metrics); its dirty ratio as of now. */
  stats(target: CleanerTarget): CleanerStats {
    const s = this.#stats.get(target.log);
    return {
      dirtyRatio: cleanableState(target.log, this.#o.clock.nowMs(), target.maxOffset).dirtyRatio,
      lastCleanedOffset: target.log.cleanerCheckpoint,
      bytesCleaned: s?.bytesCleaned ?? 0,
      lastRunMs: s?.lastRunMs ?? -1,
    };
  }

  /** Stops after the cleaning in progress, if any. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#loop;
  }

  /** Cleans `target` now, whatever its ratio (tests, the benchmark). */
  async cleanNow(target: CleanerTarget): Promise<CleanResult> {
    return await this.#clean(target);
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      const target = this.#pick();
      if (target !== null) {
        try {
          await this.#clean(target);
        } catch (err) {
          if (!target.log.closed) {
            this.#failed.add(target.log);
            log.error("Cleaning {name} failed; it is not cleaned again until restart: {error}", {
              name: target.name,
              error: err,
            });
          }
        }
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = this.#o.timers.setTimeout(resolve, this.#o.backoffMs ?? 15_000);
        this.#wake = () => {
          this.#o.timers.clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  /** The dirtiest log due for cleaning, or null. */
  #pick(): CleanerTarget | null {
    const now = this.#o.clock.nowMs();
    let best: CleanerTarget | null = null;
    let bestRatio = -1;
    for (const t of this.#o.targets()) {
      if (t.log.closed || this.#failed.has(t.log) || !t.log.config.compact) continue;
      if ((this.#idleUntil.get(t.log) ?? 0) > now) continue;
      const s = cleanableState(t.log, now, t.maxOffset);
      if (s.firstDirty >= s.firstUncleanable || s.dirtyBytes === 0) continue;
      const due = s.dirtyRatio >= t.log.config.minCleanableDirtyRatio || s.overdue;
      if (due && s.dirtyRatio > bestRatio) {
        best = t;
        bestRatio = s.dirtyRatio;
      }
    }
    return best;
  }

  async #clean(target: CleanerTarget): Promise<CleanResult> {
    const started = this.#o.clock.nowMs();
    const result = await cleanLog(target.log, {
      nowMs: started,
      maxOffset: target.maxOffset,
      mapBytes: this.#o.dedupeBufferBytes ?? 128 * 1024 * 1024,
      producerLastOffsets: target.producerLastOffsets(),
      aborted: target.abortedTransactions?.() ?? [],
      timers: this.#o.timers,
      throttle: (bytes) => this.#throttle(bytes),
    });
    if (result.cleanedUpTo <= result.firstDirty) {
      // No progress (a full map on its first batch, the log changed meanwhile): wait a
      // back-off before trying this log again rather than spin on it.
      this.#idleUntil.set(target.log, this.#o.clock.nowMs() + (this.#o.backoffMs ?? 15_000));
    }
    const s = this.#stats.get(target.log) ?? { bytesCleaned: 0, lastRunMs: -1 };
    s.bytesCleaned += result.bytesRead;
    s.lastRunMs = this.#o.clock.nowMs();
    this.#stats.set(target.log, s);
    log.info(
      "Cleaned {name} from offset {from} to {to}: {read} bytes read, {written} written, " +
        "{removed} records removed ({tombstones} tombstones) in {ms} ms{abandoned}",
      {
        name: target.name,
        from: result.firstDirty,
        to: result.cleanedUpTo,
        read: result.bytesRead,
        written: result.bytesWritten,
        removed: result.recordsRemoved,
        tombstones: result.tombstonesRemoved,
        ms: s.lastRunMs - started,
        abandoned: result.completed ? "" : " (abandoned: the log changed meanwhile)",
      },
    );
    return result;
  }

  /** Sleeps as long as the I/O rate requires before `bytes` more. */
  async #throttle(bytes: number): Promise<void> {
    const rate = this.#o.ioMaxBytesPerSecond ?? 0;
    if (rate <= 0) return;
    const now = this.#o.clock.nowMs();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowBytes = 0;
    }
    this.#windowBytes += bytes;
    const ahead = this.#windowBytes / rate * 1000 - (now - this.#windowStart);
    if (ahead > 0) await sleep(this.#o.timers, ahead);
  }
}
