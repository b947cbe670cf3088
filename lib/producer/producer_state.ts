/**
 * The idempotent-producer state of one partition (Kafka's ProducerStateManager and
 * ProducerAppendInfo, without transactions): for each producer id, its epoch and the
 * metadata of its last five appended batches. Pure: no I/O, no clock; callers pass time.
 */
import { ErrorCode } from "../protocol/error_codes.ts";
import { TidelogError } from "../util/errors.ts";

/**
 * How many of a producer's latest batches are remembered for duplicate detection. Clients
 * keep at most this many requests in flight per partition with idempotence on
 * (`max.in.flight.requests.per.connection` <= 5), so any retry is one of them.
 */
export const NUM_BATCHES_TO_RETAIN = 5;

const INT32_MAX = 0x7fffffff;

/** What the producer state needs from a batch header. */
export interface ProducerBatch {
  /** >= 0 for idempotent batches; -1 (no producer) bypasses all checks. */
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  lastOffsetDelta: number;
  /** The batch's max timestamp as stored (the append time for LogAppendTime topics). */
  maxTimestamp: number;
}

/** One remembered batch of a producer. */
export interface BatchMetadata {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** The batch's max timestamp as stored. */
  readonly timestamp: number;
}

/** A producer as this partition knows it. */
export interface ProducerStateEntry {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  /** Oldest first; at most {@linkcode NUM_BATCHES_TO_RETAIN}, all of `producerEpoch`. */
  readonly batches: readonly BatchMetadata[];
  /** Wall-clock time of the last append (or of the load that rebuilt the entry): drives expiry. */
  readonly lastUpdateMs: number;
}

/** A retried batch that is already in the log: answer with its original offsets. */
export interface DuplicateBatch {
  readonly producerId: bigint;
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly timestamp: number;
}

/**
 * A batch refused by the producer checks. `code` is OUT_OF_ORDER_SEQUENCE_NUMBER,
 * INVALID_PRODUCER_EPOCH or INVALID_RECORD.
 */
export class ProducerStateError extends TidelogError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * The sequence after `sequence` advanced by `increment`, wrapping past int32 max to 0
 * (Kafka's DefaultRecordBatch.incrementSequence).
 */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > INT32_MAX - increment) return increment - (INT32_MAX - sequence) - 1;
  return sequence + increment;
}

/** The sequence of a batch's last record. */
export function lastSequenceOf(batch: ProducerBatch): number {
  return incrementSequence(batch.baseSequence, batch.lastOffsetDelta);
}

/** True if `next` directly follows `last` (int32 wraparound included). */
function inSequence(last: number, next: number): boolean {
  return next === last + 1 || (next === 0 && last === INT32_MAX);
}

interface MutableEntry {
  producerId: bigint;
  producerEpoch: number;
  batches: BatchMetadata[];
  lastUpdateMs: number;
}

/** Epoch and last sequence of a producer while a request's batches are checked in order. */
interface Expected {
  epoch: number;
  /** -1 when the entry holds no batch yet. */
  lastSeq: number;
}

/**
 * Per-partition producer state: checks incoming idempotent batches against it and is
 * updated with each appended batch (live or replayed from the log).
 *
 * Rules (Kafka 3.x, `ProducerAppendInfo.checkProducerEpoch/checkSequence`):
 * - producer id -1: not checked, not tracked;
 * - producer id >= 0 with a negative base sequence: INVALID_RECORD (LogValidator);
 * - same epoch and the exact sequence range of one of the last 5 batches: duplicate;
 * - unknown producer id (never seen, or expired): any sequence is accepted — its state
 *   may have been removed by retention or expiry, so a gap cannot be told apart
 *   (KIP-360; Kafka no longer answers UNKNOWN_PRODUCER_ID here);
 * - epoch below the current one: INVALID_PRODUCER_EPOCH;
 * - epoch above the current one: the sequence must restart at 0, else
 *   OUT_OF_ORDER_SEQUENCE_NUMBER;
 * - same epoch: the sequence must be last + 1 (int32 wraparound), else
 *   OUT_OF_ORDER_SEQUENCE_NUMBER.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProducerStateManager } from "./producer_state.ts";
 *
 * const state = new ProducerStateManager("orders-0");
 * const batch = { producerId: 7n, producerEpoch: 0, baseSequence: 0, lastOffsetDelta: 2, maxTimestamp: 1 };
 * assert.equal(state.checkAppend([batch]), null);
 * state.onBatchAppended(batch, 100, 1_000);
 * assert.deepEqual(state.checkAppend([batch]), { producerId: 7n, firstOffset: 100, lastOffset: 102, timestamp: 1 });
 * ```
 */
export class ProducerStateManager {
  /** Partition name, for error messages. */
  readonly name: string;
  readonly #entries = new Map<bigint, MutableEntry>();

  constructor(name: string) {
    this.name = name;
  }

  /** Number of producers tracked. */
  get size(): number {
    return this.#entries.size;
  }

  /** A producer's entry (a copy), if known. */
  entry(producerId: bigint): ProducerStateEntry | undefined {
    const e = this.#entries.get(producerId);
    return e === undefined ? undefined : { ...e, batches: [...e.batches] };
  }

  /** Every entry (copies), in insertion order. */
  entries(): ProducerStateEntry[] {
    return [...this.#entries.values()].map((e) => ({ ...e, batches: [...e.batches] }));
  }

  /**
   * Checks the batches of one produce request, in order, before anything is appended.
   * Returns the first batch that duplicates one already appended (the caller answers with
   * its offsets and appends nothing, as Kafka does), or null if all may be appended.
   *
   * @throws {ProducerStateError} on a fenced epoch, a sequence gap or a missing sequence
   */
  checkAppend(batches: readonly ProducerBatch[]): DuplicateBatch | null {
    // Batches of one producer later in the same request are checked against the earlier
    // ones, not only against the committed entry (Kafka's updatedEntry).
    let pending: Map<bigint, Expected> | undefined;
    for (const b of batches) {
      if (b.producerId < 0n) continue;
      if (b.baseSequence < 0) {
        throw new ProducerStateError(
          ErrorCode.INVALID_RECORD,
          `Invalid sequence number ${b.baseSequence} in record batch with producerId ${b.producerId} for ${this.name}`,
        );
      }
      const entry = this.#entries.get(b.producerId);
      const duplicate = entry === undefined ? undefined : findDuplicate(entry, b);
      if (entry !== undefined && duplicate !== undefined) {
        return {
          producerId: b.producerId,
          firstOffset: duplicate.firstOffset,
          lastOffset: duplicate.lastOffset,
          timestamp: duplicate.timestamp,
        };
      }
      const expected = pending?.get(b.producerId) ??
        (entry === undefined ? undefined : {
          epoch: entry.producerEpoch,
          lastSeq: entry.batches.at(-1)?.lastSeq ?? -1,
        });
      if (expected !== undefined) this.#checkSequence(expected, b);
      pending ??= new Map();
      pending.set(b.producerId, { epoch: b.producerEpoch, lastSeq: lastSequenceOf(b) });
    }
    return null;
  }

  #checkSequence(expected: Expected, b: ProducerBatch): void {
    if (b.producerEpoch < expected.epoch) {
      throw new ProducerStateError(
        ErrorCode.INVALID_PRODUCER_EPOCH,
        `Epoch of producer ${b.producerId} in ${this.name} is ${b.producerEpoch}, which is smaller than the last seen epoch ${expected.epoch}`,
      );
    }
    if (b.producerEpoch > expected.epoch) {
      if (b.baseSequence !== 0) {
        throw new ProducerStateError(
          ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
          `Invalid sequence number for new epoch ${b.producerEpoch} of producer ${b.producerId} in ${this.name}: ${b.baseSequence} (seq. number), ${expected.epoch} (current producer epoch)`,
        );
      }
      return;
    }
    if (!inSequence(expected.lastSeq, b.baseSequence)) {
      throw new ProducerStateError(
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        `Out of order sequence number for producer ${b.producerId} in ${this.name}: ${b.baseSequence} (incoming seq. number), ${expected.lastSeq} (current end sequence number)`,
      );
    }
  }

  /**
   * Records a batch now in the log at `baseOffset`, without checks (appends that passed
   * {@linkcode checkAppend}, and batches replayed from the log on open). A new epoch
   * replaces the remembered batches. `nowMs` is the wall clock used for expiry.
   */
  onBatchAppended(batch: ProducerBatch, baseOffset: number, nowMs: number): void {
    if (batch.producerId < 0n) return;
    let e = this.#entries.get(batch.producerId);
    if (e === undefined) {
      e = {
        producerId: batch.producerId,
        producerEpoch: batch.producerEpoch,
        batches: [],
        lastUpdateMs: nowMs,
      };
      this.#entries.set(batch.producerId, e);
    }
    if (e.producerEpoch !== batch.producerEpoch) {
      e.producerEpoch = batch.producerEpoch;
      e.batches = [];
    }
    if (e.batches.length >= NUM_BATCHES_TO_RETAIN) e.batches.shift();
    e.batches.push({
      firstSeq: batch.baseSequence,
      lastSeq: lastSequenceOf(batch),
      firstOffset: baseOffset,
      lastOffset: baseOffset + batch.lastOffsetDelta,
      timestamp: batch.maxTimestamp,
    });
    e.lastUpdateMs = Math.max(e.lastUpdateMs, nowMs);
  }

  /**
   * Forgets producers not updated for `expirationMs` (`producer.id.expiration.ms`).
   * Returns how many were removed. A retry from an expired producer is no longer
   * recognised as a duplicate, as in Kafka.
   */
  removeExpired(nowMs: number, expirationMs: number): number {
    let removed = 0;
    for (const [id, e] of this.#entries) {
      if (nowMs - e.lastUpdateMs >= expirationMs) {
        this.#entries.delete(id);
        removed++;
      }
    }
    return removed;
  }

  /** Replaces the whole state with `entries` (loading a snapshot). */
  load(entries: readonly ProducerStateEntry[]): void {
    this.#entries.clear();
    for (const e of entries) {
      this.#entries.set(e.producerId, {
        producerId: e.producerId,
        producerEpoch: e.producerEpoch,
        batches: e.batches.slice(-NUM_BATCHES_TO_RETAIN),
        lastUpdateMs: e.lastUpdateMs,
      });
    }
  }

  /** Forgets every producer. */
  clear(): void {
    this.#entries.clear();
  }
}

function findDuplicate(entry: MutableEntry, b: ProducerBatch): BatchMetadata | undefined {
  if (b.producerEpoch !== entry.producerEpoch) return undefined;
  const lastSeq = lastSequenceOf(b);
  return entry.batches.find((m) => m.firstSeq === b.baseSequence && m.lastSeq === lastSeq);
}
