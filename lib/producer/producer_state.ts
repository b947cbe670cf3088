/**
 * The producer state of one partition (Kafka's ProducerStateManager and ProducerAppendInfo):
 * for each producer id, its epoch and the metadata of its last five appended batches, and
 * for transactional producers (KIP-98) the first offset of the transaction they have open
 * here, the coordinator epoch of the last marker, the transactions aborted in this log (the
 * aborted-transactions index Fetch answers read_committed consumers with) and the first
 * unstable offset that bounds the last stable offset. Pure: no I/O, no clock; callers pass
 * time.
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
  /** The batch attributes: the transactional bit (0x10) matters here. */
  attributes?: number;
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
  /** The first offset of the producer's open transaction here; -1 (or absent): none. */
  readonly currentTxnFirstOffset?: number;
  /** The coordinator epoch of the last transaction marker; -1 (or absent): none yet. */
  readonly coordinatorEpoch?: number;
}

/** A transaction of one producer in this log, from its first record to its marker. */
export interface TxnRange {
  readonly producerId: bigint;
  readonly firstOffset: number;
  /** The offset of the transaction's marker. */
  readonly lastOffset: number;
}

/** Where appends come from: a client's produce, or a coordinator writing its own records. */
export type AppendOrigin = "client" | "coordinator";

/** A transaction marker (the one record of a control batch). */
export interface TxnMarker {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly coordinatorEpoch: number;
  readonly commit: boolean;
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
 * INVALID_PRODUCER_EPOCH, INVALID_RECORD, INVALID_TXN_STATE or (markers)
 * TRANSACTION_COORDINATOR_FENCED.
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
  currentTxnFirstOffset: number;
  coordinatorEpoch: number;
}

const TRANSACTIONAL_BIT = 0x10;

function isTransactionalBatch(b: ProducerBatch): boolean {
  return ((b.attributes ?? 0) & TRANSACTIONAL_BIT) !== 0;
}

/** Epoch and last sequence of a producer while a request's batches are checked in order. */
interface Expected {
  epoch: number;
  /** -1 when the entry holds no batch yet. */
  lastSeq: number;
  /** A transaction is open (or opened by an earlier batch of the request). */
  inTxn: boolean;
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
  /** Open transactions here: producer id → first offset. */
  readonly #ongoing = new Map<bigint, number>();
  /**
   * Transactions whose marker is in the log but maybe not below the high watermark yet:
   * they still hold the last stable offset back (Kafka's unreplicatedTxns).
   */
  #unreplicated: TxnRange[] = [];
  /** Aborted transactions, in marker order (Kafka's transaction index). */
  #aborted: TxnRange[] = [];
  #markersAppended = 0;

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

  /** Open transactions: producer id → first offset. */
  ongoingTransactions(): ReadonlyMap<bigint, number> {
    return this.#ongoing;
  }

  /**
   * The first offset that is not stable yet: the smallest first offset of an open
   * transaction, or of a completed one whose marker is not below `highWatermark` yet; null
   * if there is none (the last stable offset is then the high watermark).
   */
  firstUnstableOffset(highWatermark: number): number | null {
    this.markReplicated(highWatermark);
    let first: number | null = null;
    for (const offset of this.#ongoing.values()) {
      if (first === null || offset < first) first = offset;
    }
    for (const t of this.#unreplicated) {
      if (first === null || t.firstOffset < first) first = t.firstOffset;
    }
    return first;
  }

  /**
   * Forgets the completed transactions whose markers are below `highWatermark` (they no
   * longer hold the LSO back). The partition calls it as its high watermark moves, so that
   * a follower, which never asks for its LSO, does not accumulate them.
   */
  markReplicated(highWatermark: number): void {
    // Markers are appended in offset order: the replicated ones are a prefix.
    let n = 0;
    while (n < this.#unreplicated.length && this.#unreplicated[n]!.lastOffset < highWatermark) n++;
    if (n > 0) this.#unreplicated = this.#unreplicated.slice(n);
  }

  /**
   * The aborted transactions a read of [`fetchOffset`, `upperOffset`) must know about:
   * those whose marker is at or after `fetchOffset` and that start before `upperOffset`
   * (Kafka's collectAbortedTxns).
   */
  abortedTransactions(fetchOffset: number, upperOffset: number): TxnRange[] {
    const out: TxnRange[] = [];
    // In marker order: skip those that ended before the read starts.
    let lo = 0;
    let hi = this.#aborted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#aborted[mid]!.lastOffset < fetchOffset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#aborted.length; i++) {
      const t = this.#aborted[i]!;
      if (t.firstOffset < upperOffset) out.push(t);
    }
    return out;
  }

  /**
   * How many markers this state has seen appended: a verification that waited on the
   * coordinator checks no marker came meanwhile (Kafka's VerificationGuard).
   */
  get markersAppended(): number {
    return this.#markersAppended;
  }

  /** Every aborted transaction still remembered (snapshots, the cleaner). */
  allAborted(): readonly TxnRange[] {
    return this.#aborted;
  }

  /** Forgets aborted transactions whose marker is below `logStartOffset` (retention). */
  trimAborted(logStartOffset: number): void {
    let n = 0;
    while (n < this.#aborted.length && this.#aborted[n]!.lastOffset < logStartOffset) n++;
    if (n > 0) this.#aborted = this.#aborted.slice(n);
  }

  /**
   * Checks a transaction marker before it is appended (Kafka's appendEndTxnMarker checks):
   * an older producer epoch is INVALID_PRODUCER_EPOCH, an older coordinator epoch
   * TRANSACTION_COORDINATOR_FENCED.
   *
   * @throws {ProducerStateError} if the marker is refused
   */
  checkMarker(marker: TxnMarker): void {
    const e = this.#entries.get(marker.producerId);
    if (e === undefined) return;
    if (marker.producerEpoch < e.producerEpoch) {
      throw new ProducerStateError(
        ErrorCode.INVALID_PRODUCER_EPOCH,
        `Transaction marker of producer ${marker.producerId} for ${this.name} has epoch ${marker.producerEpoch}, older than the current ${e.producerEpoch}`,
      );
    }
    if (marker.coordinatorEpoch < e.coordinatorEpoch) {
      throw new ProducerStateError(
        ErrorCode.TRANSACTION_COORDINATOR_FENCED,
        `Transaction marker of producer ${marker.producerId} for ${this.name} comes from coordinator epoch ${marker.coordinatorEpoch}, older than ${e.coordinatorEpoch}`,
      );
    }
  }

  /**
   * Records a marker now in the log at `offset` (live or replayed): the producer's open
   * transaction here ends, and is remembered as aborted if it was. Returns the transaction
   * it ended, or null if none was open.
   */
  onMarkerAppended(marker: TxnMarker, offset: number, nowMs: number): TxnRange | null {
    this.#markersAppended++;
    let e = this.#entries.get(marker.producerId);
    if (e === undefined) {
      e = newEntry(marker.producerId, marker.producerEpoch, nowMs);
      this.#entries.set(marker.producerId, e);
    }
    if (marker.producerEpoch > e.producerEpoch) {
      e.producerEpoch = marker.producerEpoch;
      e.batches = [];
    }
    e.coordinatorEpoch = Math.max(e.coordinatorEpoch, marker.coordinatorEpoch);
    e.lastUpdateMs = Math.max(e.lastUpdateMs, nowMs);
    if (e.currentTxnFirstOffset < 0) return null;
    const txn = {
      producerId: marker.producerId,
      firstOffset: e.currentTxnFirstOffset,
      lastOffset: offset,
    };
    e.currentTxnFirstOffset = -1;
    this.#ongoing.delete(marker.producerId);
    this.#unreplicated.push(txn);
    if (!marker.commit) this.#aborted.push(txn);
    return txn;
  }

  /**
   * Checks the batches of one produce request, in order, before anything is appended.
   * Returns the first batch that duplicates one already appended (the caller answers with
   * its offsets and appends nothing, as Kafka does), or null if all may be appended.
   *
   * @throws {ProducerStateError} on a fenced epoch, a sequence gap or a missing sequence
   */
  checkAppend(
    batches: readonly ProducerBatch[],
    origin: AppendOrigin = "client",
  ): DuplicateBatch | null {
    // Batches of one producer later in the same request are checked against the earlier
    // ones, not only against the committed entry (Kafka's updatedEntry).
    let pending: Map<bigint, Expected> | undefined;
    for (const b of batches) {
      if (b.producerId < 0n) {
        if (isTransactionalBatch(b)) {
          throw new ProducerStateError(
            ErrorCode.INVALID_RECORD,
            `Transactional batch without a producer id for ${this.name}`,
          );
        }
        continue;
      }
      if (origin === "coordinator") {
        // A coordinator's own records (transactional offset commits) carry no sequence;
        // only the epoch is checked (Kafka's AppendOrigin.COORDINATOR).
        const entry = this.#entries.get(b.producerId);
        if (entry !== undefined && b.producerEpoch < entry.producerEpoch) {
          throw new ProducerStateError(
            ErrorCode.INVALID_PRODUCER_EPOCH,
            `Epoch of producer ${b.producerId} in ${this.name} is ${b.producerEpoch}, which is smaller than the last seen epoch ${entry.producerEpoch}`,
          );
        }
        continue;
      }
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
          inTxn: entry.currentTxnFirstOffset >= 0,
        });
      if (expected !== undefined) this.#checkSequence(expected, b);
      const transactional = isTransactionalBatch(b);
      if (expected !== undefined && expected.inTxn && !transactional) {
        // Kafka's checkProducerEpoch/"Expected transactional write from producer".
        throw new ProducerStateError(
          ErrorCode.INVALID_TXN_STATE,
          `Expected transactional write from producer ${b.producerId} at offset of ${this.name}: it has a transaction open`,
        );
      }
      pending ??= new Map();
      pending.set(b.producerId, {
        epoch: b.producerEpoch,
        lastSeq: lastSequenceOf(b),
        inTxn: transactional || (expected?.inTxn ?? false),
      });
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
      e = newEntry(batch.producerId, batch.producerEpoch, nowMs);
      this.#entries.set(batch.producerId, e);
    }
    if (e.producerEpoch !== batch.producerEpoch) {
      e.producerEpoch = batch.producerEpoch;
      e.batches = [];
    }
    if (isTransactionalBatch(batch) && e.currentTxnFirstOffset < 0) {
      e.currentTxnFirstOffset = baseOffset;
      this.#ongoing.set(batch.producerId, baseOffset);
    }
    e.lastUpdateMs = Math.max(e.lastUpdateMs, nowMs);
    // A coordinator's batch has no sequence to remember.
    if (batch.baseSequence < 0) return;
    if (e.batches.length >= NUM_BATCHES_TO_RETAIN) e.batches.shift();
    e.batches.push({
      firstSeq: batch.baseSequence,
      lastSeq: lastSequenceOf(batch),
      firstOffset: baseOffset,
      lastOffset: baseOffset + batch.lastOffsetDelta,
      timestamp: batch.maxTimestamp,
    });
  }

  /**
   * Forgets producers not updated for `expirationMs` (`producer.id.expiration.ms`).
   * Returns how many were removed. A retry from an expired producer is no longer
   * recognised as a duplicate, as in Kafka.
   */
  removeExpired(nowMs: number, expirationMs: number): number {
    let removed = 0;
    for (const [id, e] of this.#entries) {
      // A producer with a transaction open here is kept until its marker comes.
      if (nowMs - e.lastUpdateMs >= expirationMs && e.currentTxnFirstOffset < 0) {
        this.#entries.delete(id);
        removed++;
      }
    }
    return removed;
  }

  /**
   * Replaces the whole state with `entries` and the `aborted` transactions (loading a
   * snapshot).
   */
  load(entries: readonly ProducerStateEntry[], aborted: readonly TxnRange[] = []): void {
    this.clear();
    for (const e of entries) {
      const txn = e.currentTxnFirstOffset ?? -1;
      this.#entries.set(e.producerId, {
        producerId: e.producerId,
        producerEpoch: e.producerEpoch,
        batches: e.batches.slice(-NUM_BATCHES_TO_RETAIN),
        lastUpdateMs: e.lastUpdateMs,
        currentTxnFirstOffset: txn,
        coordinatorEpoch: e.coordinatorEpoch ?? -1,
      });
      if (txn >= 0) this.#ongoing.set(e.producerId, txn);
    }
    this.#aborted = [...aborted].sort((a, b) => a.lastOffset - b.lastOffset);
  }

  /** Forgets every producer and transaction. */
  clear(): void {
    this.#entries.clear();
    this.#ongoing.clear();
    this.#unreplicated = [];
    this.#aborted = [];
  }
}

function newEntry(producerId: bigint, producerEpoch: number, nowMs: number): MutableEntry {
  return {
    producerId,
    producerEpoch,
    batches: [],
    lastUpdateMs: nowMs,
    currentTxnFirstOffset: -1,
    coordinatorEpoch: -1,
  };
}

function findDuplicate(entry: MutableEntry, b: ProducerBatch): BatchMetadata | undefined {
  if (b.producerEpoch !== entry.producerEpoch) return undefined;
  const lastSeq = lastSequenceOf(b);
  return entry.batches.find((m) => m.firstSeq === b.baseSequence && m.lastSeq === lastSeq);
}
