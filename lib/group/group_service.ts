/**
 * The group coordinator's I/O shell: runs the pure {@linkcode GroupCoordinator} for the
 * `__consumer_offsets` partitions this node leads, persists the records it emits into
 * those partitions (waiting for the high watermark, like acks=all) before telling the core
 * (which then shows the committed offsets) and releasing the responses they belong to,
 * drives its timers, and reloads state from the partitions when they are opened (start-up,
 * or when the topic is created).
 *
 * A partition is loaded only once its high watermark has reached its log end: until
 * then its groups answer COORDINATOR_LOAD_IN_PROGRESS, so a new coordinator never shows
 * an offset from a record that the previous leader appended but the ISR does not hold
 * yet (it could still be lost).
 */
import { forEachStoredBatch } from "../log/mod.ts";
import {
  type BatchProducer,
  decodeRecords,
  encodeRecordBatch,
  ErrorCode,
  isControl,
  isTransactional,
  readControlMarker,
} from "../protocol/mod.ts";
import type { Partition, ReplicaManager } from "../replication/mod.ts";
import { systemTimers, type Timers } from "../runtime/timers.ts";
import type { Clock } from "../util/clock.ts";
import { TidelogError } from "../util/errors.ts";
import { OnceUntilSuccess } from "../util/concurrency.ts";
import { getLogger } from "../util/log.ts";
import type { CoordinatorOutput, GroupCoordinator, RequestId } from "./group_coordinator.ts";
import { groupPartition } from "./group_partition.ts";
import { decodeGroupRecord, encodeGroupRecord, type GroupRecord } from "./group_record.ts";
import { OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS } from "./offsets_topic.ts";

const log = getLogger(["tidelog", "group"]);

/** Coordinates the groups whose offsets partitions this node leads. */
export class GroupService {
  readonly #core: GroupCoordinator;
  readonly #replicas: ReplicaManager;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #pending = new Map<
    RequestId,
    { resolve: (r: unknown) => void; reject: (e: Error) => void }
  >();
  /** Offsets partitions whose state is loaded into the core. */
  readonly #loaded = new Set<number>();
  /** Offsets partitions led here whose log end the high watermark has not reached yet. */
  readonly #loading = new Map<number, Partition>();
  #nextRequestId = 1;
  #timer: ReturnType<Timers["setTimeout"]> | undefined;
  #closed = false;
  readonly #topicCreation = new OnceUntilSuccess();

  constructor(
    core: GroupCoordinator,
    deps: { replicas: ReplicaManager; clock: Clock; timers?: Timers },
  ) {
    this.#core = core;
    this.#replicas = deps.replicas;
    this.#clock = deps.clock;
    this.#timers = deps.timers ?? systemTimers;
  }

  /** The offsets partition of `groupId`, if this node leads it and has loaded it. */
  #partitionOf(groupId: string): Partition | undefined {
    const p = groupPartition(groupId, OFFSETS_TOPIC_PARTITIONS);
    return this.#loaded.has(p) ? this.#replicas.getPartition(OFFSETS_TOPIC, p) : undefined;
  }

  /**
   * NONE if this node coordinates `groupId` now, COORDINATOR_LOAD_IN_PROGRESS while its
   * partition waits to be loaded, else NOT_COORDINATOR.
   */
  coordinatorError(groupId: string): ErrorCode {
    if (this.#partitionOf(groupId)) return ErrorCode.NONE;
    const p = groupPartition(groupId, OFFSETS_TOPIC_PARTITIONS);
    return this.#loading.has(p)
      ? ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
      : ErrorCode.NOT_COORDINATOR;
  }

  /**
   * Runs `create` (which makes sure the offsets topic exists) unless a run is already in
   * flight, and resolves when the topic's hosted partitions are loaded. A failed run is
   * forgotten so that the next caller tries again.
   */
  whenOffsetsTopicReady(create: () => Promise<void>): Promise<void> {
    return this.#topicCreation.run(() => create().then(() => this.syncPartitions()));
  }

  /** Whether the offsets topic's partitions are all loaded (FindCoordinator can answer). */
  get ready(): boolean {
    return this.#loaded.size > 0;
  }

  /**
   * Runs one coordinator call with a fresh request id and resolves with that request's
   * response, once the records it caused are durable (possibly much later, for a
   * JoinGroup waiting for the rebalance).
   */
  call(
    fn: (core: GroupCoordinator, requestId: RequestId, nowMs: number) => CoordinatorOutput,
  ): Promise<unknown> {
    const requestId = this.#nextRequestId++;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#pending.set(requestId, { resolve, reject });
    this.#dispatch(fn(this.#core, requestId, this.#clock.nowMs()));
    return promise;
  }

  /**
   * A transaction marker of `producerId` is below the high watermark of offsets partition
   * `partitionId` led here: its transactional commits there take effect or are dropped.
   */
  completeTransaction(producerId: bigint, partitionId: number, commit: boolean): void {
    if (!this.#loaded.has(partitionId)) return;
    this.#core.completeTransaction(producerId, partitionId, OFFSETS_TOPIC_PARTITIONS, commit);
  }

  /** Topics were deleted: their offsets are removed from the groups coordinated here. */
  onTopicsDeleted(topics: ReadonlySet<string>): void {
    if (topics.size === 0 || this.#closed) return;
    this.#dispatch(this.#core.removeTopicOffsets(topics, this.#clock.nowMs()));
  }

  /** Runs a read-only coordinator call. */
  read<T>(fn: (core: GroupCoordinator) => T): T {
    return fn(this.#core);
  }

  /** Persists the output's records, then releases its responses; re-arms the timer. */
  #dispatch(output: CoordinatorOutput): void {
    let durable: Promise<unknown> = Promise.resolve();
    if (output.records.length > 0 || output.txn !== undefined) {
      try {
        durable = this.#persist(output.records, output.txn);
      } catch (err) {
        durable = Promise.reject(err);
      }
    }
    const waiters = output.responses.map(({ requestId, response }) => {
      const w = this.#pending.get(requestId);
      this.#pending.delete(requestId);
      return { w, response };
    });
    const { appendId } = output;
    durable.then(
      () => {
        // Visible before the response goes out, so the committer reads its own commit.
        if (appendId !== null) this.#core.onAppendCompleted(appendId);
        waiters.forEach(({ w, response }) => w?.resolve(response));
      },
      (err) => {
        if (appendId !== null) this.#core.onAppendFailed(appendId);
        log.warn("Could not persist group records: {error}", { error: err });
        const failure = new TidelogError(
          persistFailureCode(err),
          `Group state not persisted: ${err}`,
        );
        waiters.forEach(({ w }) => w?.reject(failure));
      },
    );
    this.#armTimer();
  }

  /** Appends the records, one batch per offsets partition, and waits for them. */
  #persist(records: GroupRecord[], txn?: CoordinatorOutput["txn"]): Promise<unknown> {
    const byPartition = new Map<number, GroupRecord[]>();
    for (const r of records) {
      const p = groupPartition(r.groupId, OFFSETS_TOPIC_PARTITIONS);
      byPartition.set(p, [...(byPartition.get(p) ?? []), r]);
    }
    const now = this.#clock.nowMs();
    const waits: Promise<void>[] = [];
    const append = (p: number, list: GroupRecord[], producer?: BatchProducer) => {
      const partition = this.#replicas.getPartition(OFFSETS_TOPIC, p);
      if (!partition) {
        throw new TidelogError(
          ErrorCode.NOT_COORDINATOR,
          `Offsets partition ${p} is not hosted here`,
        );
      }
      const batch = encodeRecordBatch(
        list.map((r) => ({ ...encodeGroupRecord(r), timestampMs: now })),
        producer,
      );
      const { lastOffset } = this.#replicas.appendAsLeader(partition, batch, "coordinator");
      waits.push(partition.waitForHighWatermark(lastOffset));
    };
    // Records the core already applied (its timers') go first, whatever becomes of the
    // transaction's: a fenced producer epoch refuses only the transactional batch.
    for (const [p, list] of byPartition) append(p, list);
    if (txn !== undefined) {
      append(groupPartition(txn.records[0]!.groupId, OFFSETS_TOPIC_PARTITIONS), txn.records, {
        producerId: txn.producerId,
        producerEpoch: txn.producerEpoch,
        baseSequence: -1,
        transactional: true,
      });
    }
    return Promise.all(waits);
  }

  #armTimer(): void {
    if (this.#closed) return;
    this.#timers.clearTimeout(this.#timer);
    const deadline = this.#core.nextDeadlineMs();
    if (deadline === null) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.#dispatch(this.#core.tick(this.#clock.nowMs()));
    }, Math.max(0, deadline - this.#clock.nowMs()));
  }

  /**
   * Loads every offsets partition this node leads and has not loaded yet, and unloads
   * those it no longer leads. Called at start-up and after each metadata change.
   */
  syncPartitions(): void {
    const hosted = new Set<number>();
    for (const partition of this.#replicas.partitions()) {
      // The coordinator of a group is the leader of its offsets partition (DESIGN §9).
      if (partition.topic !== OFFSETS_TOPIC || !partition.isLeader) continue;
      hosted.add(partition.partitionId);
      if (!this.#loaded.has(partition.partitionId)) this.#load(partition);
    }
    for (const [p, partition] of [...this.#loading]) {
      if (!hosted.has(p) || this.#replicas.getPartition(OFFSETS_TOPIC, p) !== partition) {
        this.#loading.delete(p);
      }
    }
    for (const p of [...this.#loaded]) {
      if (!hosted.has(p)) {
        this.#loaded.delete(p);
        this.#dispatch(this.#core.unload(p, OFFSETS_TOPIC_PARTITIONS));
      }
    }
  }

  /** Forgets the given partitions' groups and loads them again from their logs. */
  #reload(partitions: Set<number>): void {
    if (this.#closed) return;
    for (const p of partitions) {
      if (!this.#loaded.delete(p)) continue;
      this.#dispatch(this.#core.unload(p, OFFSETS_TOPIC_PARTITIONS));
    }
    this.syncPartitions();
  }

  /**
   * Replays one offsets partition into the core, once its high watermark covers the whole
   * log (at once for a partition whose ISR already holds everything).
   */
  #load(partition: Partition): void {
    const id = partition.partitionId;
    if (this.#loading.has(id) && this.#loading.get(id) === partition) return;
    // Everything the new leader holds: its log is the partition's history from now on
    // (followers truncate to it), but a tail the ISR does not hold yet is not committed:
    // wait for it rather than show offsets a failure could still take back.
    const end = partition.log.logEndOffset;
    if (partition.highWatermark < end) {
      this.#loading.set(id, partition);
      partition.waitForHighWatermark(end - 1).then(
        () => {
          if (this.#closed || this.#loading.get(id) !== partition) return;
          this.#loading.delete(id);
          if (partition.isLeader && !partition.closed && !this.#loaded.has(id)) {
            this.#load(partition);
          }
        },
        () => {
          // Leadership moved on (or the partition closed): the next leader loads it.
          if (this.#loading.get(id) === partition) this.#loading.delete(id);
        },
      );
      return;
    }
    this.#loading.delete(id);
    const records: GroupRecord[] = [];
    // Transactional commits wait for their producer's marker: a commit marker applies
    // them, an abort marker drops them. As Kafka, a transaction's commit of a partition
    // applies only if no plain commit of it was written after it (the log offsets tell;
    // compaction may have removed whichever of the two lost).
    const pendingTxns = new Map<bigint, { record: GroupRecord; offset: number }[]>();
    const lastWritten = new Map<string, number>();
    const keyOf = (r: GroupRecord) =>
      r.kind === "offset" || r.kind === "offset-tombstone"
        ? `${r.groupId}\u0000${r.topic}\u0000${r.partition}`
        : null;
    const start = partition.log.logStartOffset;
    forEachStoredBatch(partition.log, end, (h, batch) => {
      if (isControl(h)) {
        const marker = readControlMarker(batch);
        const list = pendingTxns.get(h.producerId);
        if (marker === null || list === undefined) return;
        pendingTxns.delete(h.producerId);
        if (!marker.commit) return;
        for (const { record, offset } of list) {
          const key = keyOf(record);
          if (key !== null && (lastWritten.get(key) ?? -1) > offset) continue;
          if (key !== null) lastWritten.set(key, offset);
          records.push(record);
        }
        return;
      }
      const transactional = isTransactional(h);
      for (const r of decodeRecords(batch)) {
        if (r.offset < start || r.key === null) continue;
        const record = decodeGroupRecord(r.key, r.value);
        if (transactional) {
          const list = pendingTxns.get(h.producerId) ?? [];
          list.push({ record, offset: r.offset });
          pendingTxns.set(h.producerId, list);
        } else {
          const key = keyOf(record);
          if (key !== null) lastWritten.set(key, r.offset);
          records.push(record);
        }
      }
    });
    // Still undecided: those a later plain commit supersedes can never apply.
    const undecided = new Map<bigint, GroupRecord[]>();
    for (const [producerId, list] of pendingTxns) {
      undecided.set(
        producerId,
        list.filter(({ record, offset }) => {
          const key = keyOf(record);
          return key === null || (lastWritten.get(key) ?? -1) < offset;
        }).map(({ record }) => record),
      );
    }
    this.#core.load(records, this.#clock.nowMs(), undecided);
    this.#loaded.add(partition.partitionId);
    if (records.length > 0) {
      log.info("Loaded {count} group records from {partition}", {
        count: records.length,
        partition: partition.name,
      });
    }
    this.#armTimer();
  }

  /** Stops the timer; pending requests are rejected. */
  close(): void {
    this.#closed = true;
    this.#timers.clearTimeout(this.#timer);
    const failure = new TidelogError(
      ErrorCode.COORDINATOR_NOT_AVAILABLE,
      "The node is shutting down",
    );
    for (const w of this.#pending.values()) w.reject(failure);
    this.#pending.clear();
  }
}

/**
 * The code a request gets when its records could not be persisted (Kafka's storeOffsets
 * mapping): a fenced transactional producer keeps its own code, a lost leadership is
 * NOT_COORDINATOR, the rest COORDINATOR_NOT_AVAILABLE (retriable).
 */
function persistFailureCode(err: unknown): ErrorCode {
  if (!(err instanceof TidelogError)) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
  switch (err.code) {
    case ErrorCode.INVALID_PRODUCER_EPOCH:
    case ErrorCode.INVALID_TXN_STATE:
    case ErrorCode.NOT_COORDINATOR:
      return err.code;
    case ErrorCode.NOT_LEADER_OR_FOLLOWER:
    case ErrorCode.KAFKA_STORAGE_ERROR:
      return ErrorCode.NOT_COORDINATOR;
    default:
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
  }
}
