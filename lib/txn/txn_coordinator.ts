/**
 * The transaction coordinator's state machine (Kafka's TransactionCoordinator and
 * TransactionStateManager, transaction version 1: KIP-98 with KIP-360 and KIP-588), pure:
 * no I/O, no clock, no randomness. The shell ({@linkcode TxnService}) persists each
 * {@linkcode Transition} to `__transaction_state`, then reports it with `completed` or
 * `failed`, and writes the markers it is asked to.
 *
 * One transition per transactional id is in flight at a time (Kafka's pendingState); any
 * other request for that id meanwhile gets CONCURRENT_TRANSACTIONS, which clients retry.
 */
import { ErrorCode } from "../protocol/mod.ts";
import { groupPartition } from "../group/mod.ts";
import {
  sortPartitions,
  type TxnMetadata,
  type TxnPartition,
  type TxnRecord,
} from "./txn_record.ts";

/** Kafka's Short.MaxValue - 1: the last epoch handed out before the producer id rotates. */
const MAX_EPOCH = 32766;

/** Settings (Kafka's broker config names). */
export interface TxnCoordinatorConfig {
  /** `transaction.state.log.num.partitions` */
  partitions: number;
  /** `transaction.max.timeout.ms`: longer `transaction.timeout.ms` values are refused. */
  transactionMaxTimeoutMs: number;
  /** `transactional.id.expiration.ms`: an idle id with no open transaction is forgotten. */
  transactionalIdExpirationMs: number;
}

/** Kafka's defaults. */
export const DEFAULT_TXN_CONFIG: TxnCoordinatorConfig = {
  partitions: 50,
  transactionMaxTimeoutMs: 900_000,
  transactionalIdExpirationMs: 604_800_000,
};

/** Why a transition is written; decides what follows its completion. */
export type TransitionPurpose =
  | "init" // InitProducerId: answer with the new producer id and epoch
  | "add" // AddPartitionsToTxn / AddOffsetsToTxn: answer NONE
  | "end" // EndTxn: answer NONE, then write the markers
  | "abort" // a fenced or timed-out transaction: write the abort markers
  | "complete" // every marker written
  | "expire"; // the transactional id is removed

/** A change of one transactional id's metadata, to persist before it takes effect. */
export interface Transition {
  readonly purpose: TransitionPurpose;
  readonly transactionalId: string;
  /** The `__transaction_state` partition it goes to. */
  readonly partition: number;
  readonly coordinatorEpoch: number;
  /** The metadata after the transition; null removes the id (a tombstone). */
  readonly target: TxnMetadata | null;
}

/** Who makes a transactional call: the id and the producer id and epoch it was given. */
export interface TxnProducer {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

/** Markers to write to every partition of a transaction that is being completed. */
export interface MarkerJob {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly coordinatorEpoch: number;
  readonly commit: boolean;
  readonly partitions: readonly TxnPartition[];
}

/** What a request or event leads to. */
export type TxnStep =
  | { kind: "reply"; code: ErrorCode; producerId?: bigint; producerEpoch?: number }
  /** InitProducerId for an id that needs a fresh producer id: allocate one and call again. */
  | { kind: "needProducerId" }
  /** Persist `transition`; `reply` (if any) answers the request now, without waiting. */
  | { kind: "write"; transition: Transition; reply?: ErrorCode };

/** What follows a persisted transition. */
export interface AfterWrite {
  /** The answer to the request that caused the transition, if one waits. */
  reply?: { code: ErrorCode; producerId?: bigint; producerEpoch?: number };
  /** Markers to write now. */
  markers?: MarkerJob;
}

interface Entry {
  metadata: TxnMetadata;
  /** The transition being persisted, if any. */
  pending: Transition | null;
}

/** A transactional id's state for DescribeTransactions / ListTransactions. */
export type TxnView = Readonly<TxnMetadata>;

/** The coordinator for the `__transaction_state` partitions loaded here. */
export class TxnCoordinator {
  readonly config: TxnCoordinatorConfig;
  /** Loaded partitions → their coordinator epoch (the partition's leader epoch). */
  readonly #loaded = new Map<number, number>();
  readonly #txns = new Map<string, Entry>();

  constructor(config: TxnCoordinatorConfig = DEFAULT_TXN_CONFIG) {
    this.config = config;
  }

  /** The `__transaction_state` partition of `transactionalId`. */
  partitionOf(transactionalId: string): number {
    return groupPartition(transactionalId, this.config.partitions);
  }

  /** Whether `partition` is loaded here. */
  isLoaded(partition: number): boolean {
    return this.#loaded.has(partition);
  }

  /**
   * Takes over `partition` at `coordinatorEpoch` with its records in log order. Returns
   * the markers of the transactions that were being completed, to write again.
   */
  load(partition: number, coordinatorEpoch: number, records: readonly TxnRecord[]): MarkerJob[] {
    this.unload(partition);
    const latest = new Map<string, TxnMetadata | null>();
    for (const r of records) {
      if (r.kind === "txn") latest.set(r.metadata.transactionalId, r.metadata);
      else latest.set(r.transactionalId, null);
    }
    const jobs: MarkerJob[] = [];
    for (const [id, metadata] of latest) {
      if (metadata === null || this.partitionOf(id) !== partition) continue;
      this.#txns.set(id, { metadata, pending: null });
      if (metadata.state === "PrepareCommit" || metadata.state === "PrepareAbort") {
        jobs.push(markerJob(metadata, coordinatorEpoch));
      }
    }
    this.#loaded.set(partition, coordinatorEpoch);
    return jobs;
  }

  /** Forgets `partition`'s transactional ids (leadership moved). */
  unload(partition: number): void {
    this.#loaded.delete(partition);
    for (const id of [...this.#txns.keys()]) {
      if (this.partitionOf(id) === partition) this.#txns.delete(id);
    }
  }

  #transition(
    purpose: TransitionPurpose,
    entry: Entry,
    target: TxnMetadata | null,
  ): Transition {
    const id = entry.metadata.transactionalId;
    const partition = this.partitionOf(id);
    const t: Transition = {
      purpose,
      transactionalId: id,
      partition,
      coordinatorEpoch: this.#loaded.get(partition) ?? -1,
      target,
    };
    entry.pending = t;
    return t;
  }

  /**
   * InitProducerId with a transactional id. `expected` is the producer id and epoch the
   * client had (v3+, KIP-360; null when it has none); `freshProducerId` one the shell
   * allocated after a `needProducerId` step.
   */
  initProducerId(
    transactionalId: string,
    txnTimeoutMs: number,
    expected: { producerId: bigint; producerEpoch: number } | null,
    freshProducerId: bigint | null,
    nowMs: number,
    version: number,
  ): TxnStep {
    if (txnTimeoutMs <= 0 || txnTimeoutMs > this.config.transactionMaxTimeoutMs) {
      return { kind: "reply", code: ErrorCode.INVALID_TRANSACTION_TIMEOUT };
    }
    let entry = this.#txns.get(transactionalId);
    if (entry === undefined) {
      if (freshProducerId === null) return { kind: "needProducerId" };
      entry = {
        metadata: {
          transactionalId,
          producerId: freshProducerId,
          prevProducerId: -1n,
          producerEpoch: -1,
          lastProducerEpoch: -1,
          txnTimeoutMs,
          state: "Empty",
          partitions: [],
          txnStartTimestampMs: -1,
          txnLastUpdateTimestampMs: nowMs,
        },
        pending: null,
      };
      this.#txns.set(transactionalId, entry);
    }
    if (entry.pending !== null) return { kind: "reply", code: ErrorCode.CONCURRENT_TRANSACTIONS };
    const m = entry.metadata;
    const fenced = version >= 4 ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH;
    // KIP-360: a producer recovering names the id and epoch it had. Kafka's
    // isValidProducerId: anything goes for an id just created (its previous state expired),
    // the current producer id at its epoch or the one before, or the previous producer id
    // at an exhausted epoch (a retry after the id rotated).
    if (expected !== null && m.producerEpoch >= 0) {
      const samePid = expected.producerId === m.producerId;
      const rotated = expected.producerId === m.prevProducerId &&
        expected.producerEpoch >= MAX_EPOCH;
      const knownEpoch = expected.producerEpoch === m.producerEpoch ||
        expected.producerEpoch === m.lastProducerEpoch;
      if (!(samePid && knownEpoch) && !rotated) return { kind: "reply", code: fenced };
      // A retry of the InitProducerId that bumped the epoch: answer it again.
      const retry = rotated || expected.producerEpoch === m.lastProducerEpoch;
      if (retry && m.state === "Empty") {
        return {
          kind: "reply",
          code: ErrorCode.NONE,
          producerId: m.producerId,
          producerEpoch: m.producerEpoch,
        };
      }
    }
    switch (m.state) {
      case "PrepareCommit":
      case "PrepareAbort":
      case "PrepareEpochFence":
      case "Dead":
        return { kind: "reply", code: ErrorCode.CONCURRENT_TRANSACTIONS };
      case "Ongoing": {
        // A new incarnation of the producer: fence the old one (bump the epoch) and abort
        // its transaction; the client retries and then gets its epoch (Kafka's
        // prepareFenceProducerEpoch + endTransaction(ABORT)).
        const target = this.#abortTarget(m, nowMs);
        return {
          kind: "write",
          transition: this.#transition("abort", entry, target),
          reply: ErrorCode.CONCURRENT_TRANSACTIONS,
        };
      }
      case "Empty":
      case "CompleteCommit":
      case "CompleteAbort": {
        let producerId = m.producerId;
        let prevProducerId = m.prevProducerId;
        let producerEpoch = m.producerEpoch + 1;
        let lastProducerEpoch = m.producerEpoch;
        if (m.producerEpoch >= MAX_EPOCH) {
          if (freshProducerId === null || freshProducerId === m.producerId) {
            return { kind: "needProducerId" };
          }
          prevProducerId = m.producerId;
          producerId = freshProducerId;
          producerEpoch = 0;
          lastProducerEpoch = -1;
        }
        const target: TxnMetadata = {
          ...m,
          producerId,
          prevProducerId,
          producerEpoch,
          lastProducerEpoch,
          txnTimeoutMs,
          state: "Empty",
          partitions: [],
          txnStartTimestampMs: -1,
          txnLastUpdateTimestampMs: nowMs,
        };
        return { kind: "write", transition: this.#transition("init", entry, target) };
      }
    }
  }

  /** The metadata of an aborted open transaction, its producer fenced by an epoch bump. */
  #abortTarget(m: TxnMetadata, nowMs: number): TxnMetadata {
    const bump = m.producerEpoch < MAX_EPOCH + 1;
    return {
      ...m,
      producerEpoch: bump ? m.producerEpoch + 1 : m.producerEpoch,
      lastProducerEpoch: bump ? m.producerEpoch : m.lastProducerEpoch,
      state: "PrepareAbort",
      txnLastUpdateTimestampMs: nowMs,
    };
  }

  /** Checks a client call's producer id and epoch against the id's metadata. */
  #check(
    { transactionalId, producerId, producerEpoch }: TxnProducer,
    fenced: ErrorCode,
  ): Entry | ErrorCode {
    const entry = this.#txns.get(transactionalId);
    if (entry === undefined || entry.metadata.producerId !== producerId) {
      return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
    }
    if (entry.metadata.producerEpoch !== producerEpoch) return fenced;
    if (entry.pending !== null) return ErrorCode.CONCURRENT_TRANSACTIONS;
    return entry;
  }

  /** AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets partition). */
  addPartitions(
    producer: TxnProducer,
    partitions: readonly TxnPartition[],
    nowMs: number,
    fenced: ErrorCode,
  ): TxnStep {
    const entry = this.#check(producer, fenced);
    if (typeof entry === "number") return { kind: "reply", code: entry };
    const m = entry.metadata;
    if (m.state === "PrepareCommit" || m.state === "PrepareAbort") {
      return { kind: "reply", code: ErrorCode.CONCURRENT_TRANSACTIONS };
    }
    if (m.state === "Dead" || m.state === "PrepareEpochFence") {
      return { kind: "reply", code: ErrorCode.CONCURRENT_TRANSACTIONS };
    }
    const merged = sortPartitions([...m.partitions, ...partitions]);
    if (m.state === "Ongoing" && merged.length === m.partitions.length) {
      return { kind: "reply", code: ErrorCode.NONE };
    }
    const target: TxnMetadata = {
      ...m,
      state: "Ongoing",
      partitions: merged,
      txnStartTimestampMs: m.state === "Ongoing" ? m.txnStartTimestampMs : nowMs,
      txnLastUpdateTimestampMs: nowMs,
    };
    return { kind: "write", transition: this.#transition("add", entry, target) };
  }

  /**
   * Whether `partitions` were added to the open transaction of `producerId` at
   * `producerEpoch` (Kafka's handleVerifyPartitionsInTransaction, KIP-890 part 1): a
   * partition leader asks before it accepts a transaction's first batch. Per partition:
   * NONE or INVALID_TXN_STATE; or one code for all (INVALID_PRODUCER_ID_MAPPING,
   * PRODUCER_FENCED, CONCURRENT_TRANSACTIONS).
   */
  verify(
    { transactionalId, producerId, producerEpoch }: TxnProducer,
    partitions: readonly TxnPartition[],
  ): ErrorCode | ErrorCode[] {
    const entry = this.#txns.get(transactionalId);
    if (entry === undefined || entry.metadata.producerId !== producerId) {
      return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
    }
    const m = entry.metadata;
    if (m.producerEpoch !== producerEpoch) return ErrorCode.PRODUCER_FENCED;
    if (entry.pending !== null && entry.pending.purpose !== "add") {
      return ErrorCode.CONCURRENT_TRANSACTIONS;
    }
    const added = new Set(
      m.state === "Ongoing" ? m.partitions.map((p) => `${p.topic}\u0000${p.partition}`) : [],
    );
    return partitions.map((p) =>
      added.has(`${p.topic}\u0000${p.partition}`) ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE
    );
  }

  /** EndTxn: commit or abort the open transaction. */
  endTxn(producer: TxnProducer, commit: boolean, nowMs: number, fenced: ErrorCode): TxnStep {
    const entry = this.#check(producer, fenced);
    if (typeof entry === "number") return { kind: "reply", code: entry };
    const m = entry.metadata;
    const reply = (code: ErrorCode): TxnStep => ({ kind: "reply", code });
    switch (m.state) {
      case "Ongoing": {
        const target: TxnMetadata = {
          ...m,
          state: commit ? "PrepareCommit" : "PrepareAbort",
          txnLastUpdateTimestampMs: nowMs,
        };
        return { kind: "write", transition: this.#transition("end", entry, target) };
      }
      case "CompleteCommit":
        return reply(commit ? ErrorCode.NONE : ErrorCode.INVALID_TXN_STATE);
      case "CompleteAbort":
        return reply(commit ? ErrorCode.INVALID_TXN_STATE : ErrorCode.NONE);
      case "PrepareCommit":
        return reply(commit ? ErrorCode.CONCURRENT_TRANSACTIONS : ErrorCode.INVALID_TXN_STATE);
      case "PrepareAbort":
        return reply(commit ? ErrorCode.INVALID_TXN_STATE : ErrorCode.CONCURRENT_TRANSACTIONS);
      default:
        return reply(ErrorCode.INVALID_TXN_STATE);
    }
  }

  /**
   * Every marker of `job` is written: the transaction completes (CompleteCommit or
   * CompleteAbort). Null if the id moved on meanwhile (unloaded, or another transition).
   */
  markersWritten(job: MarkerJob, nowMs: number): Transition | null {
    const entry = this.#txns.get(job.transactionalId);
    if (entry === undefined || entry.pending !== null) return null;
    const m = entry.metadata;
    if (m.producerId !== job.producerId || m.producerEpoch !== job.producerEpoch) return null;
    if (m.state !== (job.commit ? "PrepareCommit" : "PrepareAbort")) return null;
    if (this.#loaded.get(this.partitionOf(m.transactionalId)) !== job.coordinatorEpoch) {
      return null;
    }
    const target: TxnMetadata = {
      ...m,
      state: job.commit ? "CompleteCommit" : "CompleteAbort",
      partitions: [],
      txnLastUpdateTimestampMs: nowMs,
    };
    return this.#transition("complete", entry, target);
  }

  /**
   * Periodic work: open transactions past their timeout are aborted with the producer
   * fenced (Kafka's abortTimedOutTransactions), idle ids past
   * `transactional.id.expiration.ms` are removed.
   */
  tick(nowMs: number): Transition[] {
    const out: Transition[] = [];
    for (const entry of this.#txns.values()) {
      const m = entry.metadata;
      if (entry.pending !== null) continue;
      if (m.state === "Ongoing" && m.txnStartTimestampMs + m.txnTimeoutMs <= nowMs) {
        out.push(this.#transition("abort", entry, this.#abortTarget(m, nowMs)));
      } else if (
        (m.state === "Empty" || m.state === "CompleteCommit" || m.state === "CompleteAbort") &&
        m.txnLastUpdateTimestampMs + this.config.transactionalIdExpirationMs <= nowMs
      ) {
        out.push(this.#transition("expire", entry, null));
      }
    }
    return out;
  }

  /** The earliest time `tick` has something to do; null if nothing is waiting. */
  nextDeadlineMs(): number | null {
    let next: number | null = null;
    for (const { metadata: m, pending } of this.#txns.values()) {
      if (pending !== null) continue;
      const at = m.state === "Ongoing"
        ? m.txnStartTimestampMs + m.txnTimeoutMs
        : m.state === "Empty" || m.state === "CompleteCommit" || m.state === "CompleteAbort"
        ? m.txnLastUpdateTimestampMs + this.config.transactionalIdExpirationMs
        : null;
      if (at !== null && (next === null || at < next)) next = at;
    }
    return next;
  }

  /** `transition` is durable: it takes effect. */
  completed(transition: Transition): AfterWrite {
    const entry = this.#txns.get(transition.transactionalId);
    if (entry === undefined || entry.pending !== transition) {
      // The partition was unloaded meanwhile: its new coordinator answers from the log.
      return { reply: { code: ErrorCode.NOT_COORDINATOR } };
    }
    entry.pending = null;
    const target = transition.target;
    if (target === null) {
      this.#txns.delete(transition.transactionalId);
      return {};
    }
    entry.metadata = target;
    switch (transition.purpose) {
      case "init":
        return {
          reply: {
            code: ErrorCode.NONE,
            producerId: target.producerId,
            producerEpoch: target.producerEpoch,
          },
        };
      case "add":
        return { reply: { code: ErrorCode.NONE } };
      case "end":
        return {
          reply: { code: ErrorCode.NONE },
          markers: markerJob(target, transition.coordinatorEpoch),
        };
      case "abort":
        return { markers: markerJob(target, transition.coordinatorEpoch) };
      default:
        return {};
    }
  }

  /**
   * `transition` could not be persisted: nothing changes (a new id that was never written
   * is forgotten). Clients get a retriable error.
   */
  failed(transition: Transition): AfterWrite {
    const entry = this.#txns.get(transition.transactionalId);
    if (entry !== undefined && entry.pending === transition) {
      entry.pending = null;
      if (entry.metadata.producerEpoch < 0) this.#txns.delete(transition.transactionalId);
    }
    return { reply: { code: ErrorCode.NOT_COORDINATOR } };
  }

  /** A transactional id's state, if this node coordinates it. */
  describe(transactionalId: string): TxnView | undefined {
    const m = this.#txns.get(transactionalId)?.metadata;
    return m === undefined || m.producerEpoch < 0 ? undefined : m;
  }

  /** Every transactional id coordinated here. */
  list(): TxnView[] {
    return [...this.#txns.values()].map((e) => e.metadata).filter((m) => m.producerEpoch >= 0);
  }
}

function markerJob(m: TxnMetadata, coordinatorEpoch: number): MarkerJob {
  return {
    transactionalId: m.transactionalId,
    producerId: m.producerId,
    producerEpoch: m.producerEpoch,
    coordinatorEpoch,
    commit: m.state === "PrepareCommit",
    partitions: m.partitions,
  };
}
