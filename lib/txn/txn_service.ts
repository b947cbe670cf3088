/**
 * The transaction coordinator's I/O shell: runs the pure {@linkcode TxnCoordinator} for the
 * `__transaction_state` partitions this node leads, persists its transitions into those
 * partitions (waiting for the high watermark, like acks=all) before they take effect and
 * before the requests that caused them are answered, writes the markers of completing
 * transactions through the {@linkcode MarkerWriter} (retrying until every partition has
 * them), drives the timeout timer, and reloads state when leadership arrives.
 *
 * A partition is loaded only once its high watermark has reached its log end (until then
 * its ids answer COORDINATOR_LOAD_IN_PROGRESS), so a new coordinator never acts on a
 * transition the ISR does not hold yet. Its coordinator epoch is the partition's leader
 * epoch, which grows with every leadership change: markers from an older coordinator are
 * refused by the partition leaders (TRANSACTION_COORDINATOR_FENCED).
 */
import { forEachStoredBatch } from "../log/mod.ts";
import { decodeRecords, encodeRecordBatch, ErrorCode, isControl } from "../protocol/mod.ts";
import type { Partition, ReplicaManager } from "../replication/mod.ts";
import { sleep, systemTimers, type Timers } from "../runtime/timers.ts";
import type { Clock } from "../util/clock.ts";
import { TidelogError } from "../util/errors.ts";
import { OnceUntilSuccess } from "../util/concurrency.ts";
import { getLogger } from "../util/log.ts";
import { TXN_TOPIC } from "./transaction_topic.ts";
import type {
  AfterWrite,
  MarkerJob,
  Transition,
  TxnCoordinator,
  TxnProducer,
  TxnStep,
  TxnView,
} from "./txn_coordinator.ts";
import {
  decodeTxnRecord,
  encodeTxnRecord,
  type TxnPartition,
  type TxnRecord,
} from "./txn_record.ts";

const log = getLogger(["tidelog", "txn"]);

/** The outcome of writing markers to some partitions: an error code per partition. */
export type MarkerResults = Map<string, ErrorCode>;

/**
 * Writes a transaction's markers to the given partitions, wherever their leaders are, and
 * resolves once each partition answered (NONE once the marker is below its high
 * watermark), keyed by {@linkcode partitionKey}.
 */
export type MarkerWriter = (
  job: MarkerJob,
  partitions: readonly TxnPartition[],
) => Promise<MarkerResults>;

/** The key of a partition in {@linkcode MarkerResults}. */
export function partitionKey(p: TxnPartition): string {
  return `${p.topic}-${p.partition}`;
}

/** Pause between two rounds of markers for partitions that failed (no leader, moving). */
const MARKER_RETRY_MS = 100;

/** Answer of a request the coordinator handled. */
export interface TxnReply {
  code: ErrorCode;
  producerId?: bigint;
  producerEpoch?: number;
}

/** Coordinates the transactional ids whose `__transaction_state` partitions this node leads. */
export class TxnService {
  readonly #core: TxnCoordinator;
  readonly #replicas: ReplicaManager;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #allocateProducerId: () => Promise<bigint>;
  readonly #writeMarkers: MarkerWriter;
  readonly #partitionExists: (topic: string, partition: number) => boolean;
  readonly #loading = new Map<number, Partition>();
  /** Loaded partitions and the partition object they were loaded from. */
  readonly #loaded = new Map<number, Partition>();
  #timer: ReturnType<Timers["setTimeout"]> | undefined;
  #closed = false;
  readonly #topicCreation = new OnceUntilSuccess();
  /** Marker jobs in flight (for tests and shutdown). */
  readonly #markerJobs = new Set<Promise<void>>();

  constructor(
    core: TxnCoordinator,
    deps: {
      replicas: ReplicaManager;
      clock: Clock;
      timers?: Timers;
      allocateProducerId: () => Promise<bigint>;
      writeMarkers: MarkerWriter;
      /** Whether a partition exists (markers for a deleted one are dropped). */
      partitionExists: (topic: string, partition: number) => boolean;
    },
  ) {
    this.#core = core;
    this.#replicas = deps.replicas;
    this.#clock = deps.clock;
    this.#timers = deps.timers ?? systemTimers;
    this.#allocateProducerId = deps.allocateProducerId;
    this.#writeMarkers = deps.writeMarkers;
    this.#partitionExists = deps.partitionExists;
  }

  get partitions(): number {
    return this.#core.config.partitions;
  }

  /** The `__transaction_state` partition of `transactionalId`. */
  partitionOf(transactionalId: string): number {
    return this.#core.partitionOf(transactionalId);
  }

  /**
   * NONE if this node coordinates `transactionalId` now, COORDINATOR_LOAD_IN_PROGRESS while
   * its partition waits to be loaded, else NOT_COORDINATOR.
   */
  coordinatorError(transactionalId: string): ErrorCode {
    const p = this.#core.partitionOf(transactionalId);
    if (this.#loaded.has(p) && this.#core.isLoaded(p)) return ErrorCode.NONE;
    return this.#loading.has(p)
      ? ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
      : ErrorCode.NOT_COORDINATOR;
  }

  /**
   * Runs `create` (which makes sure `__transaction_state` exists) unless a run is in flight;
   * a failed run is forgotten so that the next caller tries again.
   */
  whenTopicReady(create: () => Promise<void>): Promise<void> {
    return this.#topicCreation.run(() => create().then(() => this.syncPartitions()));
  }

  /** InitProducerId with a transactional id. */
  async initProducerId(
    transactionalId: string,
    txnTimeoutMs: number,
    expected: { producerId: bigint; producerEpoch: number } | null,
    version: number,
  ): Promise<TxnReply> {
    const run = (fresh: bigint | null) =>
      this.#core.initProducerId(
        transactionalId,
        txnTimeoutMs,
        expected,
        fresh,
        this.#clock.nowMs(),
        version,
      );
    let step = run(null);
    if (step.kind === "needProducerId") {
      const fresh = await this.#allocateProducerId();
      const code = this.coordinatorError(transactionalId);
      if (code !== ErrorCode.NONE) return { code };
      step = run(fresh);
      if (step.kind === "needProducerId") return { code: ErrorCode.CONCURRENT_TRANSACTIONS };
    }
    return await this.#execute(step);
  }

  /** AddPartitionsToTxn / AddOffsetsToTxn. */
  addPartitions(
    producer: TxnProducer,
    partitions: readonly TxnPartition[],
    fenced: ErrorCode,
  ): Promise<TxnReply> {
    return this.#execute(
      this.#core.addPartitions(producer, partitions, this.#clock.nowMs(), fenced),
    );
  }

  /** EndTxn. */
  endTxn(producer: TxnProducer, commit: boolean, fenced: ErrorCode): Promise<TxnReply> {
    return this.#execute(this.#core.endTxn(producer, commit, this.#clock.nowMs(), fenced));
  }

  /** See {@linkcode TxnCoordinator.verify}; NOT_COORDINATOR if this node is not it. */
  verify(producer: TxnProducer, partitions: readonly TxnPartition[]): ErrorCode | ErrorCode[] {
    const code = this.coordinatorError(producer.transactionalId);
    if (code !== ErrorCode.NONE) return code;
    return this.#core.verify(producer, partitions);
  }

  /** A transactional id's state here, if this node coordinates it. */
  describe(transactionalId: string): TxnView | undefined {
    return this.#core.describe(transactionalId);
  }

  /** Every transactional id this node coordinates. */
  list(): TxnView[] {
    return this.#core.list();
  }

  async #execute(step: TxnStep): Promise<TxnReply> {
    switch (step.kind) {
      case "reply":
        return step;
      case "needProducerId":
        return { code: ErrorCode.CONCURRENT_TRANSACTIONS };
      case "write": {
        const done = this.#apply(step.transition);
        if (step.reply !== undefined) {
          done.catch(() => {});
          return { code: step.reply };
        }
        return (await done).reply ?? { code: ErrorCode.NONE };
      }
    }
  }

  /** Persists `transition`, then lets it take effect and starts what follows it. */
  async #apply(transition: Transition): Promise<AfterWrite> {
    let after: AfterWrite;
    try {
      await this.#persist(transition);
      after = this.#core.completed(transition);
    } catch (err) {
      log.warn("Could not persist transaction state of {transactionalId}: {error}", {
        transactionalId: transition.transactionalId,
        error: err,
      });
      after = this.#core.failed(transition);
    }
    if (after.markers !== undefined) this.#startMarkers(after.markers);
    this.#armTimer();
    return after;
  }

  #persist(transition: Transition): Promise<void> {
    const partition = this.#loaded.get(transition.partition);
    if (partition === undefined || !partition.isLeader || partition.closed) {
      return Promise.reject(
        new TidelogError(
          ErrorCode.NOT_COORDINATOR,
          `${TXN_TOPIC}-${transition.partition} is not led here`,
        ),
      );
    }
    const record: TxnRecord = transition.target === null
      ? { kind: "txn-tombstone", transactionalId: transition.transactionalId }
      : { kind: "txn", metadata: transition.target };
    const batch = encodeRecordBatch([{
      ...encodeTxnRecord(record),
      timestampMs: this.#clock.nowMs(),
    }]);
    const { lastOffset } = this.#replicas.appendAsLeader(partition, batch, "coordinator");
    return partition.waitForHighWatermark(lastOffset);
  }

  #startMarkers(job: MarkerJob): void {
    const run = this.#sendMarkers(job).catch((err) => {
      log.warn("Markers of transaction {transactionalId} stopped: {error}", {
        transactionalId: job.transactionalId,
        error: err,
      });
    });
    this.#markerJobs.add(run);
    run.finally(() => this.#markerJobs.delete(run));
  }

  /**
   * Writes `job`'s markers until every partition has one (or its topic is gone), then
   * completes the transaction. Stops if this node stops coordinating the id: the next
   * coordinator writes them again after loading.
   */
  async #sendMarkers(job: MarkerJob): Promise<void> {
    let remaining = [...job.partitions];
    const stillCoordinator = () =>
      !this.#closed && this.coordinatorError(job.transactionalId) === ErrorCode.NONE &&
      this.#core.describe(job.transactionalId)?.producerEpoch === job.producerEpoch;
    while (remaining.length > 0) {
      if (!stillCoordinator()) return;
      const results = await this.#writeMarkers(job, remaining);
      const next: TxnPartition[] = [];
      for (const p of remaining) {
        const code = results.get(partitionKey(p)) ?? ErrorCode.UNKNOWN_SERVER_ERROR;
        if (code === ErrorCode.NONE) continue;
        if (
          code === ErrorCode.INVALID_PRODUCER_EPOCH ||
          code === ErrorCode.TRANSACTION_COORDINATOR_FENCED
        ) {
          // A newer coordinator (or producer epoch) has taken over this transaction; as
          // Kafka, this coordinator stops writing its markers.
          log.warn("Markers of {transactionalId} refused by {partition} with {code}", {
            transactionalId: job.transactionalId,
            partition: partitionKey(p),
            code,
          });
          return;
        }
        if (!this.#partitionExists(p.topic, p.partition)) continue;
        next.push(p);
      }
      remaining = next;
      if (remaining.length > 0) await sleep(this.#timers, MARKER_RETRY_MS);
    }
    if (!stillCoordinator()) return;
    const transition = this.#core.markersWritten(job, this.#clock.nowMs());
    if (transition !== null) await this.#apply(transition);
  }

  #armTimer(): void {
    if (this.#closed) return;
    this.#timers.clearTimeout(this.#timer);
    const deadline = this.#core.nextDeadlineMs();
    if (deadline === null) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      const transitions = this.#core.tick(this.#clock.nowMs());
      for (const t of transitions) {
        if (t.purpose === "abort") {
          log.info("Aborting transaction of {transactionalId}: it timed out", {
            transactionalId: t.transactionalId,
          });
        }
        void this.#apply(t);
      }
      this.#armTimer();
    }, Math.max(0, deadline - this.#clock.nowMs()));
  }

  /**
   * Loads every `__transaction_state` partition this node leads and has not loaded yet,
   * and unloads those it no longer leads. Called at start-up and after metadata changes.
   */
  syncPartitions(): void {
    const hosted = new Set<number>();
    for (const partition of this.#replicas.partitions()) {
      if (partition.topic !== TXN_TOPIC || !partition.isLeader) continue;
      hosted.add(partition.partitionId);
      const loaded = this.#loaded.get(partition.partitionId);
      // A new leader epoch (leadership lost and regained) is a new coordinator epoch.
      if (loaded !== partition || !this.#core.isLoaded(partition.partitionId)) {
        this.#load(partition);
      }
    }
    for (const [p, partition] of [...this.#loading]) {
      if (!hosted.has(p) || this.#replicas.getPartition(TXN_TOPIC, p) !== partition) {
        this.#loading.delete(p);
      }
    }
    for (const p of [...this.#loaded.keys()]) {
      if (!hosted.has(p)) {
        this.#loaded.delete(p);
        this.#core.unload(p);
      }
    }
  }

  #load(partition: Partition): void {
    const id = partition.partitionId;
    if (this.#loading.get(id) === partition) return;
    const end = partition.log.logEndOffset;
    if (partition.highWatermark < end) {
      this.#loading.set(id, partition);
      this.#loaded.delete(id);
      this.#core.unload(id);
      partition.waitForHighWatermark(end - 1).then(
        () => {
          if (this.#closed || this.#loading.get(id) !== partition) return;
          this.#loading.delete(id);
          if (partition.isLeader && !partition.closed) this.#load(partition);
        },
        () => {
          if (this.#loading.get(id) === partition) this.#loading.delete(id);
        },
      );
      return;
    }
    this.#loading.delete(id);
    const records: TxnRecord[] = [];
    forEachStoredBatch(partition.log, end, (h, batch) => {
      if (isControl(h)) return;
      for (const r of decodeRecords(batch)) {
        if (r.key === null) continue;
        try {
          records.push(decodeTxnRecord(r.key, r.value));
        } catch (err) {
          // Only coordinators write this topic; a record no version of them wrote is
          // skipped rather than keep every id of the partition without a coordinator.
          log.error("Skipping an undecodable record at offset {offset} of {partition}: {error}", {
            offset: r.offset,
            partition: partition.name,
            error: err,
          });
        }
      }
    });
    const jobs = this.#core.load(id, partition.leaderEpoch, records);
    this.#loaded.set(id, partition);
    if (records.length > 0) {
      log.info("Loaded {count} transaction records from {partition} ({completing} completing)", {
        count: records.length,
        partition: partition.name,
        completing: jobs.length,
      });
    }
    for (const job of jobs) this.#startMarkers(job);
    this.#armTimer();
  }

  /** Resolves once no marker job is running (tests). */
  async idle(): Promise<void> {
    while (this.#markerJobs.size > 0) await Promise.all([...this.#markerJobs]);
  }

  /** Stops the timer and the marker jobs (they end at their next step). */
  close(): void {
    this.#closed = true;
    this.#timers.clearTimeout(this.#timer);
  }
}
