/**
 * One partition replica hosted on this node (DESIGN §8): the I/O shell around its
 * {@linkcode PartitionCore}. It owns the log, producer state and leader-epoch cache, feeds
 * the core the log's offsets and the time with every event, and carries out what the core
 * returns: releasing acks=all waiters below the high watermark, failing them when
 * leadership is lost, recording a new leader epoch, waking long polls, and handing ISR
 * proposals and role changes to the {@linkcode ReplicaManager}.
 *
 * The high watermark is the core's: as leader the smallest durable end over the maximal
 * ISR; as follower the leader's, capped at this log's end. It starts at the log start
 * offset when the partition opens (it is not checkpointed).
 */
import type { PartitionLog } from "../log/mod.ts";
import type { LeaderRecoveryState, PartitionState } from "../metadata/mod.ts";
import { ErrorCode } from "../protocol/error_codes.ts";
import type { BatchHeader } from "../protocol/record_batch.ts";
import type { PartitionProducerState } from "../producer/mod.ts";
import type { FileSystem } from "../runtime/fs.ts";
import { systemTimers, type Timers } from "../runtime/timers.ts";
import type { Clock } from "../util/clock.ts";
import { TidelogError } from "../util/errors.ts";
import { getLogger } from "../util/log.ts";
import type { FollowerState } from "./isr.ts";
import type { LeaderEpochFileCache } from "./leader_epoch_file_cache.ts";
import {
  type CoreOutput,
  type ImageContext,
  type IsrAnswer,
  type IsrProposal,
  type LogOffsets,
  PartitionCore,
  type PartitionRole,
} from "./partition_core.ts";

const log = getLogger(["tidelog", "replication"]);

/** Identifies a partition in logs and errors ("orders-3"). */
export function partitionName(topic: string, partitionId: number): string {
  return `${topic}-${partitionId}`;
}

interface AckWaiter {
  /** Resolve once the high watermark is above this offset. */
  readonly offset: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** What the replica manager hears from a partition. */
export interface PartitionHooks {
  /** Send this ISR change to the controller; report the answer with `answered`. */
  propose(partition: Partition, proposal: IsrProposal): void;
}

/** A partition replica hosted here. */
export class Partition {
  readonly topic: string;
  readonly topicId: string;
  readonly partitionId: number;
  readonly log: PartitionLog;
  /** Idempotent-producer state; rebuilt from the log after a truncation. */
  producerState: PartitionProducerState;
  /** Where each leader epoch starts in the log (OffsetForLeaderEpoch, follower truncation). */
  readonly leaderEpochCache: LeaderEpochFileCache;
  readonly #core: PartitionCore;
  readonly #clock: Clock;
  readonly #timers: Timers;
  #hooks: PartitionHooks | null = null;
  #waiters = new Set<() => void>();
  #ackWaiters: AckWaiter[] = [];
  #appendWakePending = false;
  #truncation: Promise<void> = Promise.resolve();
  #closed = false;
  /** Leader: each follower's log start offset from its last fetch (DeleteRecords). */
  readonly #followerLogStart = new Map<number, number>();

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
    deps: {
      nodeId: number;
      clock: Clock;
      timers?: Timers;
      fs?: FileSystem;
      /** Kafka `replica.lag.time.max.ms`. @default 5000 */
      replicaLagTimeMaxMs?: number;
    },
  ) {
    this.topic = init.topic;
    this.topicId = init.topicId;
    this.partitionId = init.partitionId;
    this.log = init.log;
    this.producerState = init.producerState;
    this.leaderEpochCache = init.leaderEpochCache;
    this.#clock = deps.clock;
    this.#timers = deps.timers ?? systemTimers;
    this.#core = new PartitionCore(
      { nodeId: deps.nodeId, replicaLagTimeMaxMs: deps.replicaLagTimeMaxMs ?? 5000 },
      { leaderEpoch: init.leaderEpoch, hw: init.log.logStartOffset },
    );
  }

  /** Wires the partition to its manager (ISR proposals). */
  attach(hooks: PartitionHooks): void {
    this.#hooks = hooks;
  }

  get name(): string {
    return partitionName(this.topic, this.partitionId);
  }

  get role(): PartitionRole {
    return this.#core.role;
  }

  get isLeader(): boolean {
    return this.#core.role === "leader";
  }

  /** The leader this replica follows (-1: none; this node's id when it leads). */
  get leaderId(): number {
    return this.#core.leaderId;
  }

  get leaderEpoch(): number {
    return this.#core.leaderEpoch;
  }

  get partitionEpoch(): number {
    return this.#core.partitionEpoch;
  }

  /** The committed ISR. */
  get isr(): readonly number[] {
    return this.#core.isr;
  }

  get replicas(): readonly number[] {
    return this.#core.replicas;
  }

  /** KIP-704: 1 (RECOVERING) after an unclean election, until the leader reports back. */
  get leaderRecoveryState(): LeaderRecoveryState {
    return this.#core.leaderRecoveryState;
  }

  /** The committed ISR plus any member a pending proposal adds (the HW waits for them). */
  get maximalIsr(): readonly number[] {
    return this.#core.maximalIsr;
  }

  /** The ISR change in flight, if any. */
  get pendingIsr(): IsrProposal | null {
    return this.#core.pending;
  }

  /** Offsets below it are acknowledged and visible to consumers. */
  get highWatermark(): number {
    return this.#core.highWatermark;
  }

  /**
   * The last stable offset: the high watermark, or the first offset of a transaction not
   * decided (or whose marker is not replicated) yet, if lower. read_committed consumers
   * read below it.
   */
  get lastStableOffset(): number {
    const hw = this.highWatermark;
    const first = this.producerState.state.firstUnstableOffset(hw);
    // Retention or DeleteRecords may have removed an open transaction's start (Kafka clamps
    // the first unstable offset to the log start too).
    return first === null ? hw : Math.max(this.log.logStartOffset, Math.min(first, hw));
  }

  /** Leader only: the followers' fetch state (for ISR decisions). */
  get followers(): ReadonlyMap<number, FollowerState> {
    return this.#core.followers;
  }

  #offsets(): LogOffsets {
    return {
      logStart: this.log.logStartOffset,
      logEnd: this.log.logEndOffset,
      durableEnd: this.log.durableEndOffset,
    };
  }

  /**
   * Takes the image's state for this partition: leader, follower of `state.leader`, or
   * neither (no leader, or leadership held). Returns the role change, if any, so the
   * manager can start or stop fetching.
   */
  applyImage(
    state: PartitionState,
    ctx: Omit<ImageContext, "nowMs" | "log">,
  ): CoreOutput["role"] {
    const out = this.#core.applyImage(state, {
      ...ctx,
      nowMs: this.#clock.nowMs(),
      log: this.#offsets(),
    });
    this.#act(out);
    return out.role;
  }

  /**
   * Leader: a follower fetched at `fetchOffset` (everything below is durable there),
   * reporting `logStartOffset` (-1 when unknown).
   */
  onFollowerFetch(replicaId: number, fetchOffset: number, logStartOffset = -1): void {
    if (logStartOffset >= 0 && this.#followerLogStart.get(replicaId) !== logStartOffset) {
      this.#followerLogStart.set(replicaId, logStartOffset);
      this.#wake();
    }
    this.#act(
      this.#core.followerFetched(replicaId, fetchOffset, this.#clock.nowMs(), this.#offsets()),
    );
  }

  /**
   * Leader: the smallest log start offset over this replica and the other replicas on
   * live brokers (-1 for one that has not reported it yet): Kafka's lowWatermarkIfLeader,
   * which DeleteRecords waits on.
   */
  lowWatermark(isLive: (brokerId: number) => boolean, selfId: number): number {
    let low = this.log.logStartOffset;
    for (const r of this.replicas) {
      if (r === selfId || !isLive(r)) continue;
      low = Math.min(low, this.#followerLogStart.get(r) ?? -1);
    }
    return low;
  }

  /** Periodic ISR checks (shrink, expand, re-send an unanswered proposal). */
  tick(): void {
    this.#act(this.#core.tick(this.#clock.nowMs(), this.#offsets()));
  }

  /** The controller answered `proposal` (or did not: `{ kind: "unknown" }`). */
  answered(proposal: IsrProposal, answer: IsrAnswer): void {
    this.#act(this.#core.answered(proposal, answer, this.#clock.nowMs(), this.#offsets()));
  }

  #act(out: CoreOutput): void {
    if (out.note) log.info("{partition}: {note}", { partition: this.name, note: out.note });
    if (out.newLeaderEpoch !== undefined) this.maybeAssignLeaderEpoch();
    if (out.failAcks !== undefined) {
      this.#failAckWaiters(
        new TidelogError(out.failAcks, `This node is no longer the leader of ${this.name}`),
      );
    }
    if (out.hw !== undefined) {
      this.#releaseAcks(out.hw);
      this.producerState.state.markReplicated(out.hw);
    }
    if (out.role !== undefined || out.hw !== undefined) this.#wake();
    if (out.propose !== undefined) this.#hooks?.propose(this, out.propose);
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

  /** Follower: the leader's high watermark from a fetch response. */
  setFollowerHighWatermark(leaderHw: number): void {
    if (this.#core.setFollowerHighWatermark(leaderHw, this.#offsets())) {
      this.producerState.state.markReplicated(this.highWatermark);
      this.#wake();
    }
  }

  #releaseAcks(hw: number): void {
    if (this.#ackWaiters.length === 0) return;
    const still: AckWaiter[] = [];
    for (const w of this.#ackWaiters) {
      if (w.offset < hw) w.resolve();
      else still.push(w);
    }
    this.#ackWaiters = still;
  }

  /** Leader: after appending up to `lastOffset` (its fsync may still be pending). */
  afterAppend(lastOffset: number): void {
    // Followers long-polling for new data wake on the next macrotask, so that appends of
    // pipelined requests arriving together go out in one fetch response (and one fsync on
    // each follower). The HW moves once the data is durable.
    if (!this.#appendWakePending) {
      this.#appendWakePending = true;
      this.#timers.setImmediate(() => {
        this.#appendWakePending = false;
        this.#wake();
      });
    }
    // A failed fsync stops the node (ReplicaManager's storage failure hook) and rejects
    // the ack waiters through waitForHighWatermark, so this background wake-up may drop it.
    this.log.waitDurable(lastOffset).then(
      () => this.#act(this.#core.logAdvanced(this.#offsets())),
      () => {},
    );
  }

  /**
   * Follower: appends batches fetched from the leader (offsets already assigned),
   * learning leader epochs from their headers and keeping the producer state.
   */
  appendAsFollower(batches: Uint8Array[], headers: readonly BatchHeader[]): number {
    const result = this.log.appendAsFollower(batches);
    for (const h of headers) {
      if (h.partitionLeaderEpoch > this.leaderEpochCache.latestEpoch) {
        this.leaderEpochCache.assign(h.partitionLeaderEpoch, h.baseOffset);
      }
    }
    let bytes = 0;
    for (const b of batches) bytes += b.length;
    this.producerState.onAppended(headers, batches, headers[0]!.baseOffset, {
      logAppendTimeMs: -1,
      bytes,
    });
    return result.lastOffset;
  }

  /**
   * Truncates the log at `offset` (a follower removing a divergent tail) and drops the
   * leader epochs that start at or after it — also when the log already ends at or before
   * `offset` (Kafka's truncateTo → truncateFromEnd): an epoch in which this replica led
   * but appended nothing must go, or the next OffsetForLeaderEpoch asks about it again
   * forever. Then rebuilds the producer state from what remains.
   */
  truncateTo(offset: number): Promise<void> {
    return this.#truncating(async () => {
      const cuts = offset < this.log.logEndOffset;
      if (cuts) await this.log.truncateTo(offset);
      this.leaderEpochCache.truncateFromEnd(Math.min(offset, this.log.logEndOffset));
      return cuts;
    });
  }

  /**
   * Follower: empties the log and restarts it at the leader's log start (this replica
   * fell below it), forgetting every leader epoch and producer.
   */
  truncateFullyAndStartAt(offset: number): Promise<void> {
    return this.#truncating(async () => {
      await this.log.truncateFullyAndStartAt(offset);
      this.leaderEpochCache.clear();
      return true;
    });
  }

  /**
   * Runs a truncation, then (if the log changed) rebuilds the producer state from the
   * log. A role change waits for it ({@linkcode Partition.whenTruncated}), so a new leader
   * never appends to a log that is still being cut.
   */
  #truncating(cut: () => Promise<boolean>): Promise<void> {
    const run = this.#truncation.then(async () => {
      const changed = await cut();
      // At once: the replay below yields, and the HW must never sit outside the log.
      this.#core.clampHighWatermark(this.#offsets());
      if (changed) {
        // From the newest snapshot at or below the new end, replayed in chunks that yield.
        this.producerState = await this.producerState.reloadAfterTruncation();
      }
    });
    this.#truncation = run.catch(() => {});
    return run;
  }

  /** Resolves once no truncation is in progress. */
  whenTruncated(): Promise<void> {
    return this.#truncation;
  }

  /** Resolves once everything up to `offset` is fsynced here (acks=1). */
  waitLocalDurable(offset: number): Promise<void> {
    return this.log.waitDurable(offset);
  }

  /**
   * Resolves when `offset` is below the high watermark (acks=all); rejects with
   * NOT_LEADER_OR_FOLLOWER if this node stops leading first, or if the partition closes.
   */
  waitForHighWatermark(offset: number): Promise<void> {
    if (offset < this.highWatermark) return Promise.resolve();
    if (this.#closed || !this.isLeader) {
      return Promise.reject(
        new TidelogError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `Not the leader of ${this.name}`),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#ackWaiters.push({ offset, resolve, reject });
    // A failed fsync rejects the wait instead of leaving it to time out.
    this.log.waitDurable(offset).catch((err) => {
      this.#ackWaiters = this.#ackWaiters.filter((w) => w.resolve !== resolve);
      reject(err);
    });
    return promise;
  }

  #failAckWaiters(err: Error): void {
    const waiters = this.#ackWaiters;
    this.#ackWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  /**
   * Registers a one-shot callback for the next change: new data appended, a high
   * watermark move, a role change, or close. Returns a function that cancels it.
   */
  onChange(wake: () => void): () => void {
    if (this.#closed) {
      queueMicrotask(wake);
      return () => {};
    }
    this.#waiters.add(wake);
    return () => this.#waiters.delete(wake);
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Wakes all waiters and stops accepting new ones (the log is closed by the owner). */
  markClosed(): void {
    this.#closed = true;
    this.#failAckWaiters(
      new TidelogError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${this.name} is closed here`),
    );
    this.#wake();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
