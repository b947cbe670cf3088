/**
 * One partition hosted on this node: its log, its leader epoch and its high watermark,
 * plus the waiters (long-polling fetches, acks waiting on the HW) woken when it moves.
 *
 * On a single node the ISR is this node alone, so the high watermark is the durable end
 * offset when acknowledgements wait for fsync and the log end offset otherwise.
 */
import type { PartitionLog } from "../log/mod.ts";
import type { PartitionProducerState } from "../producer/mod.ts";

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
      leaderEpoch: number;
    },
    options: { hwTracksDurable: boolean },
  ) {
    this.topic = init.topic;
    this.topicId = init.topicId;
    this.partitionId = init.partitionId;
    this.log = init.log;
    this.producerState = init.producerState;
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
