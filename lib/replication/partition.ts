/**
 * One partition replica hosted on this node (DESIGN §8): its log, producer state and
 * leader-epoch cache, its role (leader, follower, or neither while it has no leader),
 * its high watermark, and the waiters woken when it changes.
 *
 * As leader it tracks each follower's fetches ({@linkcode FollowerState}) and computes
 * the high watermark as the smallest durable end offset over the ISR the metadata log
 * last committed (I4: it never goes back). A follower's fetch offset is its durable end:
 * followers fetch again only once what they appended is fsynced. As follower it takes
 * the high watermark from the leader's fetch responses.
 *
 * The high watermark starts at the log start offset when the partition opens (it is not
 * checkpointed): a new leader moves it up as soon as its ISR followers report, so no
 * offset a crash could have left unreplicated is ever shown to consumers.
 */
import type { PartitionLog } from "../log/mod.ts";
import type { PartitionState } from "../metadata/mod.ts";
import { ErrorCode } from "../protocol/error_codes.ts";
import type { BatchHeader } from "../protocol/record_batch.ts";
import { PartitionProducerState } from "../producer/mod.ts";
import { denoFs, type FileSystem } from "../runtime/fs.ts";
import { systemTimers, type TimerHandle, type Timers } from "../runtime/timers.ts";
import type { Clock } from "../util/clock.ts";
import { TidelogError } from "../util/errors.ts";
import { highWatermark } from "./high_watermark.ts";
import { type FollowerState, newFollowerState, updateFollowerFetchState } from "./isr.ts";
import type { LeaderEpochFileCache } from "./leader_epoch_file_cache.ts";

/** Identifies a partition in logs and errors ("orders-3"). */
export function partitionName(topic: string, partitionId: number): string {
  return `${topic}-${partitionId}`;
}

/** What this node is for the partition. */
export type PartitionRole = "leader" | "follower" | "none";

interface AckWaiter {
  /** Resolve once the high watermark is above this offset. */
  readonly offset: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
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
  readonly #nodeId: number;
  readonly #clock: Clock;
  readonly #timers: Timers;
  /** The log's disk, where a truncation's rebuilt producer state is snapshotted. */
  readonly #fs: FileSystem;
  #role: PartitionRole = "none";
  /** The partition's leader from the metadata image (-1: none). */
  leaderId = -1;
  leaderEpoch: number;
  partitionEpoch = -1;
  /** The committed ISR from the metadata image. */
  isr: readonly number[] = [];
  /**
   * Leader: an ISR change proposed to the controller and not yet committed. The HW is
   * computed over the committed ISR plus the members this proposal adds (Kafka's
   * "maximal ISR"): once committed, every ISR member must hold everything below the HW.
   */
  #proposedIsr: readonly number[] | null = null;
  replicas: readonly number[] = [];
  #highWatermark: number;
  /** Leader only: what each follower's fetches told us. */
  #followers = new Map<number, FollowerState>();
  #waiters = new Set<() => void>();
  #ackWaiters: AckWaiter[] = [];
  #appendWake: TimerHandle | undefined;
  #truncation: Promise<void> = Promise.resolve();
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
    deps: { nodeId: number; clock: Clock; timers?: Timers; fs?: FileSystem },
  ) {
    this.topic = init.topic;
    this.topicId = init.topicId;
    this.partitionId = init.partitionId;
    this.log = init.log;
    this.producerState = init.producerState;
    this.leaderEpochCache = init.leaderEpochCache;
    this.leaderEpoch = init.leaderEpoch;
    this.#nodeId = deps.nodeId;
    this.#clock = deps.clock;
    this.#timers = deps.timers ?? systemTimers;
    this.#fs = deps.fs ?? denoFs;
    this.#highWatermark = init.log.logStartOffset;
  }

  get name(): string {
    return partitionName(this.topic, this.partitionId);
  }

  get role(): PartitionRole {
    return this.#role;
  }

  get isLeader(): boolean {
    return this.#role === "leader";
  }

  /** Offsets below it are acknowledged and visible to consumers. */
  get highWatermark(): number {
    return this.#highWatermark;
  }

  /** Leader only: the followers' fetch state (for ISR decisions). */
  get followers(): ReadonlyMap<number, FollowerState> {
    return this.#followers;
  }

  /**
   * Makes this replica the leader for `state` (Kafka's makeLeader), or takes a new ISR
   * or partition epoch as leader. A new leader epoch starts at the log end; the followers'
   * state starts unknown (ISR members count as caught up now).
   */
  becomeLeader(state: PartitionState): void {
    const newEpoch = this.#role !== "leader" || state.leaderEpoch !== this.leaderEpoch;
    this.#role = "leader";
    this.#setState(state);
    if (newEpoch) {
      const now = this.#clock.nowMs();
      this.#followers = new Map();
      for (const id of state.replicas) {
        if (id === this.#nodeId) continue;
        this.#followers.set(
          id,
          newFollowerState(id, { inIsr: state.isr.includes(id), nowMs: now }),
        );
      }
      this.maybeAssignLeaderEpoch();
    }
    this.#updateLeaderHighWatermark();
    this.#wake();
  }

  /**
   * Makes this replica a follower of `state.leader` (or of nobody, when it is -1). Acks
   * still waiting fail with NOT_LEADER_OR_FOLLOWER: this node can no longer tell when
   * they are replicated.
   */
  becomeFollower(state: PartitionState): void {
    this.#role = state.leader === -1 ? "none" : "follower";
    this.#setState(state);
    this.#followers = new Map();
    this.#proposedIsr = null;
    this.#failAckWaiters(
      new TidelogError(
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        `This node is no longer the leader of ${this.name}`,
      ),
    );
    this.#wake();
  }

  #setState(state: PartitionState): void {
    if (state.partitionEpoch !== this.partitionEpoch) this.#proposedIsr = null;
    this.leaderId = state.leader;
    this.leaderEpoch = state.leaderEpoch;
    this.partitionEpoch = state.partitionEpoch;
    this.isr = state.isr;
    this.replicas = state.replicas;
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
   * Leader: a follower fetched at `fetchOffset` (everything below it is durable on the
   * follower). Updates its state and the high watermark.
   */
  onFollowerFetch(replicaId: number, fetchOffset: number): void {
    const state = this.#followers.get(replicaId);
    if (this.#role !== "leader" || state === undefined) return;
    this.#followers.set(
      replicaId,
      updateFollowerFetchState(state, {
        fetchOffset,
        fetchTimeMs: this.#clock.nowMs(),
        leaderEnd: this.log.logEndOffset,
      }),
    );
    this.#updateLeaderHighWatermark();
  }

  /** Leader: an ISR change was proposed (`newIsr`), or the proposal failed (null). */
  setProposedIsr(newIsr: readonly number[] | null): void {
    this.#proposedIsr = newIsr;
    this.#updateLeaderHighWatermark();
  }

  /** The committed ISR plus any member a pending proposal adds. */
  get maximalIsr(): readonly number[] {
    const proposed = this.#proposedIsr;
    if (proposed === null) return this.isr;
    return [...this.isr, ...proposed.filter((id) => !this.isr.includes(id))];
  }

  #updateLeaderHighWatermark(): void {
    if (this.#role !== "leader") return;
    const ends = new Map<number, number>();
    for (const [id, f] of this.#followers) if (f.logEndOffset >= 0) ends.set(id, f.logEndOffset);
    const hw = highWatermark({
      leaderDurableEnd: this.log.durableEndOffset,
      isr: this.maximalIsr,
      leaderId: this.#nodeId,
      followerDurableEnds: ends,
      currentHw: this.#highWatermark,
    });
    this.#setHighWatermark(hw);
  }

  /** Follower: the leader's high watermark from a fetch response. */
  setFollowerHighWatermark(leaderHw: number): void {
    if (this.#role === "leader") return;
    const hw = Math.max(this.log.logStartOffset, Math.min(leaderHw, this.log.logEndOffset));
    if (hw !== this.#highWatermark) {
      this.#highWatermark = hw;
      this.#wake();
    }
  }

  #setHighWatermark(hw: number): void {
    if (hw <= this.#highWatermark) return;
    this.#highWatermark = hw;
    const still: AckWaiter[] = [];
    for (const w of this.#ackWaiters) {
      if (w.offset < hw) w.resolve();
      else still.push(w);
    }
    this.#ackWaiters = still;
    this.#wake();
  }

  /** Leader: after appending up to `lastOffset` (its fsync may still be pending). */
  afterAppend(lastOffset: number): void {
    // Followers long-polling for new data wake on the next macrotask, so that appends of
    // pipelined requests arriving together go out in one fetch response (and one fsync on
    // each follower). The HW moves once the data is durable.
    if (this.#appendWake === undefined) {
      this.#appendWake = this.#timers.setTimeout(() => {
        this.#appendWake = undefined;
        this.#wake();
      }, 0);
    }
    // A failed fsync is fatal and reported by the log itself; ack waiters see it through
    // waitLocalDurable, so this background wake-up may drop it.
    this.log.waitDurable(lastOffset).then(() => this.#updateLeaderHighWatermark(), () => {});
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
    this.producerState.onAppended(headers, headers[0]!.baseOffset, { logAppendTimeMs: -1, bytes });
    return result.lastOffset;
  }

  /**
   * Truncates the log at `offset` (a follower removing a divergent tail), drops the
   * leader epochs that started at or after the new log end, and rebuilds the producer
   * state from what remains.
   */
  truncateTo(offset: number, clock: Clock): Promise<void> {
    if (offset >= this.log.logEndOffset) return Promise.resolve();
    return this.#truncating(async () => {
      await this.log.truncateTo(offset);
      this.leaderEpochCache.truncateFromEnd(this.log.logEndOffset);
    }, clock);
  }

  /**
   * Follower: empties the log and restarts it at the leader's log start (this replica
   * fell below it), forgetting every leader epoch and producer.
   */
  truncateFullyAndStartAt(offset: number, clock: Clock): Promise<void> {
    return this.#truncating(async () => {
      await this.log.truncateFullyAndStartAt(offset);
      this.leaderEpochCache.clear();
    }, clock);
  }

  /**
   * Runs a truncation, then rebuilds the producer state from the log. A role change
   * waits for it ({@linkcode Partition.whenTruncated}), so a new leader never appends to
   * a log that is still being cut.
   */
  #truncating(cut: () => Promise<void>, clock: Clock): Promise<void> {
    const run = this.#truncation.then(async () => {
      await cut();
      await this.producerState.abandon();
      this.producerState = await PartitionProducerState.load(this.log, { clock, fs: this.#fs });
      const end = this.log.logEndOffset;
      if (this.#highWatermark > end || this.#highWatermark < this.log.logStartOffset) {
        this.#highWatermark = Math.max(this.log.logStartOffset, Math.min(this.#highWatermark, end));
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
    if (offset < this.#highWatermark) return Promise.resolve();
    if (this.#closed || this.#role !== "leader") {
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
    this.#timers.clearTimeout(this.#appendWake);
    this.#failAckWaiters(
      new TidelogError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${this.name} is closed here`),
    );
    this.#wake();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
