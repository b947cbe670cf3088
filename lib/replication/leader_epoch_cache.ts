/**
 * The leader-epoch cache of one partition: for each leader epoch that wrote to the log,
 * the offset of its first record (Kafka's `LeaderEpochFileCache`, KIP-101/KIP-279). Pure:
 * no I/O; {@linkcode LeaderEpochFileCache} persists it.
 *
 * Invariant: entries are sorted with strictly increasing epochs and strictly increasing
 * start offsets, and every epoch and offset is >= 0.
 */

/** Kafka's UNDEFINED_EPOCH: no leader epoch is known. */
export const UNDEFINED_EPOCH = -1;
/** Kafka's UNDEFINED_EPOCH_OFFSET: no end offset is known. */
export const UNDEFINED_EPOCH_OFFSET = -1;

/** One cache entry: `epoch` wrote its first record at `startOffset`. */
export interface EpochEntry {
  readonly epoch: number;
  readonly startOffset: number;
}

/** An OffsetForLeaderEpoch answer: an epoch and the offset where it ended. */
export interface EpochEndOffset {
  /** The largest known epoch <= the requested one, or {@linkcode UNDEFINED_EPOCH}. */
  readonly epoch: number;
  /** The first offset after that epoch, or {@linkcode UNDEFINED_EPOCH_OFFSET}. */
  readonly endOffset: number;
}

const UNDEFINED: EpochEndOffset = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };

/**
 * Kafka's `LeaderEpochFileCache.endOffsetFor` over `entries` (sorted as the cache keeps
 * them): the largest epoch <= `requestedEpoch` and its end offset, which is the start of
 * the next higher epoch, or `logEndOffset` for the latest one.
 *
 * - `requestedEpoch` is UNDEFINED_EPOCH, or larger than every known epoch (and not the
 *   latest): UNDEFINED (-1, -1).
 * - `requestedEpoch` is below every known epoch: (`requestedEpoch`, start offset of the
 *   earliest epoch). Kafka answers so (rather than UNDEFINED, as its javadoc and KIP-101
 *   say) since the older data is gone and the follower must replicate from there.
 *
 * @example
 * ```ts
 * import { endOffsetForEpoch } from "./leader_epoch_cache.ts";
 * const entries = [{ epoch: 0, startOffset: 0 }, { epoch: 2, startOffset: 10 }];
 * const r = endOffsetForEpoch(entries, 1, 15); // epoch 1 unknown: epoch 0 ended at 10
 * if (r.epoch !== 0 || r.endOffset !== 10) throw new Error("unexpected");
 * ```
 */
export function endOffsetForEpoch(
  entries: readonly EpochEntry[],
  requestedEpoch: number,
  logEndOffset: number,
): EpochEndOffset {
  if (requestedEpoch === UNDEFINED_EPOCH) return UNDEFINED;
  const latest = entries[entries.length - 1];
  if (latest !== undefined && latest.epoch === requestedEpoch) {
    // The epoch being written to (on a leader): it ends at the log end.
    return { epoch: requestedEpoch, endOffset: logEndOffset };
  }
  const higher = entries.findIndex((e) => e.epoch > requestedEpoch);
  if (higher < 0) return UNDEFINED;
  const next = entries[higher]!;
  if (higher === 0) return { epoch: requestedEpoch, endOffset: next.startOffset };
  return { epoch: entries[higher - 1]!.epoch, endOffset: next.startOffset };
}

/**
 * Checks that `entries` keep the cache invariant (sorted, strictly increasing epochs and
 * start offsets, none negative).
 *
 * @throws {RangeError} naming the first violation
 */
export function checkEpochEntries(entries: readonly EpochEntry[]): void {
  let prev: EpochEntry | undefined;
  for (const e of entries) {
    if (!Number.isSafeInteger(e.epoch) || e.epoch < 0) {
      throw new RangeError(`Cannot use leader epoch entry ${show(e)}: epoch is not valid`);
    }
    if (!Number.isSafeInteger(e.startOffset) || e.startOffset < 0) {
      throw new RangeError(`Cannot use leader epoch entry ${show(e)}: start offset is not valid`);
    }
    if (prev !== undefined && (e.epoch <= prev.epoch || e.startOffset <= prev.startOffset)) {
      throw new RangeError(
        `Cannot use leader epoch entry ${show(e)} after ${show(prev)}: entries must increase`,
      );
    }
    prev = e;
  }
}

function show(e: EpochEntry): string {
  return `(epoch ${e.epoch}, offset ${e.startOffset})`;
}

/**
 * The in-memory leader-epoch cache of a partition.
 *
 * @example
 * ```ts
 * import { LeaderEpochCache } from "./leader_epoch_cache.ts";
 * const cache = new LeaderEpochCache();
 * cache.assign(0, 0);
 * cache.assign(3, 42);
 * const r = cache.endOffsetFor(0, 50);
 * if (r.epoch !== 0 || r.endOffset !== 42) throw new Error("unexpected");
 * ```
 */
export class LeaderEpochCache {
  #entries: EpochEntry[];

  /** Starts from `entries` (checked with {@linkcode checkEpochEntries}). */
  constructor(entries: readonly EpochEntry[] = []) {
    checkEpochEntries(entries);
    this.#entries = entries.map((e) => ({ epoch: e.epoch, startOffset: e.startOffset }));
  }

  /** A copy of the entries, ascending. */
  get entries(): EpochEntry[] {
    return [...this.#entries];
  }

  /** The number of entries. */
  get size(): number {
    return this.#entries.length;
  }

  /** The latest epoch, or {@linkcode UNDEFINED_EPOCH} when the cache is empty. */
  get latestEpoch(): number {
    return this.#entries[this.#entries.length - 1]?.epoch ?? UNDEFINED_EPOCH;
  }

  /** The latest entry, if any. */
  get latestEntry(): EpochEntry | undefined {
    return this.#entries[this.#entries.length - 1];
  }

  /** The earliest entry, if any. */
  get earliestEntry(): EpochEntry | undefined {
    return this.#entries[0];
  }

  /** The start offset of `epoch`, or undefined if the cache has no entry for it. */
  startOffsetOf(epoch: number): number | undefined {
    return this.#entries.find((e) => e.epoch === epoch)?.startOffset;
  }

  /** The epoch the record at `offset` belongs to, or UNDEFINED_EPOCH if before every entry. */
  epochForOffset(offset: number): number {
    let epoch = UNDEFINED_EPOCH;
    for (const e of this.#entries) {
      if (e.startOffset > offset) break;
      epoch = e.epoch;
    }
    return epoch;
  }

  /**
   * Records that `epoch` starts at `startOffset`, by Kafka's rules: the same epoch as the
   * latest at an offset not below its start changes nothing; otherwise every entry from
   * the end whose epoch is >= `epoch` or whose start offset is >= `startOffset` is removed
   * (a later epoch that wrote nothing, or a conflict), then the entry is appended.
   * The leader calls it with (its epoch, log end offset) before the epoch's first append.
   *
   * @returns true if the cache changed (the caller persists it)
   * @throws {RangeError} if `epoch` or `startOffset` is negative
   */
  assign(epoch: number, startOffset: number): boolean {
    if (!Number.isSafeInteger(epoch) || epoch < 0) {
      throw new RangeError(`Cannot assign leader epoch ${epoch}: not a valid epoch`);
    }
    if (!Number.isSafeInteger(startOffset) || startOffset < 0) {
      throw new RangeError(
        `Cannot assign leader epoch ${epoch} at offset ${startOffset}: not a valid offset`,
      );
    }
    const latest = this.latestEntry;
    if (latest !== undefined && latest.epoch === epoch && startOffset >= latest.startOffset) {
      return false;
    }
    while (this.#entries.length > 0) {
      const last = this.#entries[this.#entries.length - 1]!;
      if (last.epoch < epoch && last.startOffset < startOffset) break;
      this.#entries.pop();
    }
    this.#entries.push({ epoch, startOffset });
    return true;
  }

  /**
   * The answer to OffsetForLeaderEpoch for `requestedEpoch`; see
   * {@linkcode endOffsetForEpoch}.
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: number): EpochEndOffset {
    return endOffsetForEpoch(this.#entries, requestedEpoch, logEndOffset);
  }

  /**
   * Removes the entries whose start offset is >= `endOffset`, after the log was truncated
   * to it (Kafka's `truncateFromEnd`).
   *
   * @returns true if the cache changed
   */
  truncateFromEnd(endOffset: number): boolean {
    const before = this.#entries.length;
    while (
      this.#entries.length > 0 && this.#entries[this.#entries.length - 1]!.startOffset >= endOffset
    ) {
      this.#entries.pop();
    }
    return this.#entries.length !== before;
  }

  /**
   * Drops the entries wholly before `startOffset` after the log start moved there
   * (retention, DeleteRecords): the last epoch starting at or before it is kept and now
   * starts at `startOffset` (Kafka's `truncateFromStart`).
   *
   * @returns true if the cache changed
   */
  truncateFromStart(startOffset: number): boolean {
    let k = 0;
    while (k < this.#entries.length && this.#entries[k]!.startOffset <= startOffset) k++;
    if (k === 0) return false;
    const kept = this.#entries[k - 1]!;
    if (k === 1 && kept.startOffset === startOffset) return false;
    this.#entries.splice(0, k, { epoch: kept.epoch, startOffset });
    return true;
  }

  /** Removes every entry. */
  clear(): boolean {
    const changed = this.#entries.length > 0;
    this.#entries = [];
    return changed;
  }
}
