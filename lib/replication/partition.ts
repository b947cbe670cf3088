/**
 * One partition hosted on this node: its log, its leader epoch and its high watermark,
 * plus the waiters (long-polling fetches, acks waiting on the HW) woken when it moves.
 *
 * On a single node the ISR is this node alone, so the high watermark is the durable end
 * offset when acknowledgements wait for fsync and the log end offset otherwise.
 */
import type { PartitionLog } from "../log/mod.ts";
import type { PartitionProducerState } from "../producer/mod.ts";
import type { LeaderEpochFileCache } from "./leader_epoch_file_cache.ts";

/** Identifies a partition in logs and errors ("orders-3"). */
export function partitionName(topic: string, partitionId: number): string {
  return `${topic}-${partitionId}`;
}

/** A partition replica led by this node. */
export class Partition {
  readonly topic: string;
  readonly topicId: string;
  readonly partitionId: number;
  readonly log: PartitionLog;
  /** Idempotent-producer state, rebuilt when the partition opened. */
  readonly producerState: PartitionProducerState;
  /** Where each leader epoch starts in the log (OffsetForLeaderEpoch, follower truncation). */
  readonly leaderEpochCache: LeaderEpochFileCache;
  leaderEpoch: number;
  #hwTracksDurable: boolean;
  #highWatermark: number;
  #waiters = new Set<() => void>();
  #closed = false;

  constructor(
    init: {
      topic: string;
      topicId: string;
      partitionId: number;
      log: PartitionLog;
      producerState: PartitionProducerState;
      leaderEpochCache: LeaderEpochFileCache;
      leaderEpoch: number;
    },
    options: { hwTracksDurable: boolean },
  ) {
    this.topic = init.topic;
    this.topicId = init.topicId;
    this.partitionId = init.partitionId;
    this.log = init.log;
    this.producerState = init.producerState;
    this.leaderEpochCache = init.leaderEpochCache;
    this.leaderEpoch = init.leaderEpoch;
    this.#hwTracksDurable = options.hwTracksDurable;
    this.#highWatermark = this.#currentHighWatermark();
  }

  get name(): string {
    return partitionName(this.topic, this.partitionId);
  }

  /** Offsets below it are acknowledged and visible to consumers; never moves back. */
  get highWatermark(): number {
    return this.#highWatermark;
  }

  #currentHighWatermark(): number {
    return this.#hwTracksDurable ? this.log.durableEndOffset : this.log.logEndOffset;
  }

  /**
   * Re-reads the high watermark from the log and wakes waiters if it advanced. Called
   * after appends and after each fsync completes.
   */
  maybeAdvanceHighWatermark(): boolean {
    const hw = this.#currentHighWatermark();
    if (hw <= this.#highWatermark) return false;
    this.#highWatermark = hw;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
    return true;
  }

  /**
   * Records that the current leader epoch starts at the log end, if the cache does not
   * know it yet: done when this node becomes leader (Kafka's `makeLeader`) and before the
   * epoch's first append. Never moves the cache back to an older epoch. The file is
   * written in the background; {@linkcode LeaderEpochFileCache.flush} waits for it.
   */
  maybeAssignLeaderEpoch(): boolean {
    // A closed partition's cache is closed too; its log refuses the append that follows.
    if (this.#closed || this.leaderEpoch <= this.leaderEpochCache.latestEpoch) return false;
    return this.leaderEpochCache.assign(this.leaderEpoch, this.log.logEndOffset);
  }

  /**
   * Truncates the log at `offset` (a follower removing a divergent tail) and drops the
   * leader epochs that started at or after the new log end.
   */
  async truncateTo(offset: number): Promise<void> {
    await this.log.truncateTo(offset);
    this.leaderEpochCache.truncateFromEnd(this.log.logEndOffset);
  }

  /** Moves the high watermark once an append up to `lastOffset` is acknowledgeable. */
  afterAppend(lastOffset: number): void {
    if (!this.#hwTracksDurable) {
      this.maybeAdvanceHighWatermark();
      return;
    }
    // A failed fsync is fatal and reported by the log itself; waiters see the rejection
    // through waitForHighWatermark, so this background wake-up may drop it.
    this.log.waitDurable(lastOffset).then(() => this.maybeAdvanceHighWatermark(), () => {});
  }

  /** Resolves when `offset` is below the high watermark (rejects if the partition closes). */
  async waitForHighWatermark(offset: number): Promise<void> {
    if (this.#hwTracksDurable) await this.log.waitDurable(offset);
    this.maybeAdvanceHighWatermark();
  }

  /**
   * Registers a one-shot callback for the next high-watermark advance (or close).
   * Returns a function that cancels it.
   */
  onHighWatermarkAdvance(wake: () => void): () => void {
    if (this.#closed) {
      queueMicrotask(wake);
      return () => {};
    }
    this.#waiters.add(wake);
    return () => this.#waiters.delete(wake);
  }

  /** Wakes all waiters and stops accepting new ones (the log is closed by the owner). */
  markClosed(): void {
    this.#closed = true;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
