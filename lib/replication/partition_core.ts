/**
 * The replication decisions for one partition replica, as a pure state machine (the
 * treatment lib/raft/core.ts gives Raft): it takes events — the metadata image's state for
 * the partition, a follower's fetch, the local log becoming durable, the controller's
 * answer to an ISR change, a timer tick — and returns what the shell must do: the high
 * watermark to publish (ack waiters below it are released), a role change (start or stop
 * fetching, fail the waiting acks), an AlterPartition request to send. The log, the
 * controller channel, sockets and clocks stay in the shell (`partition.ts`,
 * `replica_manager.ts`), which passes the log's offsets and the time with each event.
 *
 * Leader rules, after Kafka's Partition (makeLeader, maybeExpandIsr, maybeShrinkIsr,
 * submitAlterPartition, handleAlterPartitionUpdate/Error), KRaft mode:
 * - The high watermark is the smallest durable end over the maximal ISR: the committed
 *   ISR plus every replica a pending proposal adds (a pending shrink still counts the
 *   replicas it removes). It never goes back.
 * - At most one ISR change is in flight. While it is unresolved no other is proposed; it
 *   resolves when the image shows a newer partition (or leader) epoch, when the
 *   controller's answer carries the new state (adopted at once: ISR and partition epoch),
 *   or when the answer means "not applied" (INELIGIBLE_REPLICA, OPERATION_NOT_ATTEMPTED,
 *   INVALID_REQUEST: the partition epoch was current and nothing changed). An answer of
 *   unknown outcome (timeout, lost connection) re-sends the same request after a
 *   back-off; INVALID_UPDATE_VERSION and the like wait for the image.
 * - FENCED_LEADER_EPOCH means a newer leader epoch exists: this replica stops acting as
 *   leader at once (acks fail NOT_LEADER_OR_FOLLOWER) and takes the partition up again
 *   only in a newer epoch.
 * - An image older than the partition epoch this leader already holds (adopted from an
 *   answer) is ignored (Kafka's "already at a newer partition epoch").
 * - A leader elected uncleanly (leader recovery state RECOVERING, KIP-704) has nothing
 *   to recover here (no transactions), so it reports RECOVERED to the controller at once,
 *   and the ISR may grow again once that is committed.
 * - A follower whose broker epoch changes (it re-registered: a new incarnation, maybe
 *   with a lost disk) starts from unknown fetch state (KIP-903).
 */
import { ErrorCode } from "../protocol/error_codes.ts";
import type { LeaderRecoveryState, PartitionState } from "../metadata/mod.ts";
import { highWatermark } from "./high_watermark.ts";
import {
  type FollowerState,
  isrDecisions,
  newFollowerState,
  updateFollowerFetchState,
} from "./isr.ts";

/** What this node is for the partition. */
export type PartitionRole = "leader" | "follower" | "none";

/** An AlterPartition request the core wants sent (one per partition at a time). */
export interface IsrProposal {
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly newIsr: readonly number[];
  readonly leaderRecoveryState: LeaderRecoveryState;
}

/** The controller's answer to a proposal, or that none came (timeout, lost connection). */
export type IsrAnswer =
  | { readonly kind: "answered"; readonly errorCode: number; readonly state?: AnsweredState }
  | { readonly kind: "unknown"; readonly reason: string };

/** The partition state an AlterPartition response carries. */
export interface AnsweredState {
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly isr: readonly number[];
  readonly leaderRecoveryState?: LeaderRecoveryState;
}

/** What the shell must do after an event; every field optional. */
export interface CoreOutput {
  /** The high watermark moved up to this. */
  hw?: number;
  /** The role changed (or the leader or epoch followed changed). */
  role?: { readonly role: PartitionRole; readonly leader: number; readonly leaderEpoch: number };
  /** A new leader epoch began here: record it in the epoch cache at the log end. */
  newLeaderEpoch?: number;
  /** Acks still waiting must fail with this code (leadership lost). */
  failAcks?: ErrorCode;
  /** Send this AlterPartition request. */
  propose?: IsrProposal;
  /** A line for the log, when something noteworthy happened. */
  note?: string;
}

/** The log's offsets, as the shell reads them at each event. */
export interface LogOffsets {
  readonly logStart: number;
  readonly logEnd: number;
  readonly durableEnd: number;
}

/** Settings of {@linkcode PartitionCore}. */
export interface PartitionCoreConfig {
  nodeId: number;
  /** Kafka `replica.lag.time.max.ms`. */
  replicaLagTimeMaxMs: number;
}

/** Context of an image change. */
export interface ImageContext {
  readonly nowMs: number;
  readonly log: LogOffsets;
  /** Lead nothing yet (a node that has not caught up with the metadata log). */
  readonly holdLeadership: boolean;
  /** The broker epoch of each replica's registration (-1: not registered). */
  readonly brokerEpoch: (id: number) => number;
  /** Whether a replica may join the ISR (registered, unfenced, not shutting down). */
  readonly eligible: (id: number) => boolean;
}

interface Pending {
  readonly sent: IsrProposal;
  /** Re-send after this time (an answer of unknown outcome); null: wait for metadata. */
  retryAtMs: number | null;
  attempts: number;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** See the module documentation. */
export class PartitionCore {
  readonly #cfg: PartitionCoreConfig;
  #role: PartitionRole = "none";
  #leaderId = -1;
  #leaderEpoch: number;
  #partitionEpoch = -1;
  #replicas: readonly number[] = [];
  /** The committed ISR (from the image, or from an answer that carried it). */
  #isr: readonly number[] = [];
  #recovery: LeaderRecoveryState = 0;
  #hw: number;
  #followers = new Map<number, FollowerState>();
  /** Followers' broker epochs when their fetch state was last reset. */
  #followerEpochs = new Map<number, number>();
  #pending: Pending | null = null;
  /** Where this leader's epoch starts in its log (the log end when it became leader). */
  #epochStart = -1;
  /** A FENCED_LEADER_EPOCH answer came for this epoch: do not lead in it again. */
  #fencedEpoch = -1;
  #eligible: (id: number) => boolean = () => true;

  constructor(cfg: PartitionCoreConfig, init: { leaderEpoch: number; hw: number }) {
    this.#cfg = cfg;
    this.#leaderEpoch = init.leaderEpoch;
    this.#hw = init.hw;
  }

  get role(): PartitionRole {
    return this.#role;
  }
  get leaderId(): number {
    return this.#leaderId;
  }
  get leaderEpoch(): number {
    return this.#leaderEpoch;
  }
  get partitionEpoch(): number {
    return this.#partitionEpoch;
  }
  get replicas(): readonly number[] {
    return this.#replicas;
  }
  /** The committed ISR. */
  get isr(): readonly number[] {
    return this.#isr;
  }
  get leaderRecoveryState(): LeaderRecoveryState {
    return this.#recovery;
  }
  get highWatermark(): number {
    return this.#hw;
  }
  /** Leader only: what each follower's fetches told it. */
  get followers(): ReadonlyMap<number, FollowerState> {
    return this.#followers;
  }
  /** The proposal in flight, if any. */
  get pending(): IsrProposal | null {
    return this.#pending?.sent ?? null;
  }

  /** The committed ISR plus the replicas a pending proposal adds. */
  get maximalIsr(): readonly number[] {
    const sent = this.#pending?.sent;
    if (!sent) return this.#isr;
    return [...this.#isr, ...sent.newIsr.filter((id) => !this.#isr.includes(id))];
  }

  /** The image's state of the partition (Kafka's makeLeader / makeFollower). */
  applyImage(state: PartitionState, ctx: ImageContext): CoreOutput {
    this.#eligible = ctx.eligible;
    const me = this.#cfg.nodeId;
    const out: CoreOutput & { role?: CoreOutput["role"] } = {};
    if (state.leader === me && !ctx.holdLeadership && state.leaderEpoch > this.#fencedEpoch) {
      const sameEpoch = this.#role === "leader" && state.leaderEpoch === this.#leaderEpoch;
      if (sameEpoch && state.partitionEpoch < this.#partitionEpoch) return {};
      if (!sameEpoch) {
        this.#role = "leader";
        this.#leaderId = me;
        this.#leaderEpoch = state.leaderEpoch;
        this.#epochStart = ctx.log.logEnd;
        // A proposal sent in this leader epoch before a pause in leading (this broker lost
        // the controller quorum) may have been committed since: it stays pending, and goes
        // again to learn its fate, unless the image below resolves it.
        const kept = this.#pending;
        if (kept !== null && kept.sent.leaderEpoch === state.leaderEpoch) {
          kept.retryAtMs = ctx.nowMs;
        } else {
          this.#pending = null;
        }
        this.#followers = new Map();
        this.#followerEpochs = new Map();
        for (const id of state.replicas) {
          if (id === me) continue;
          this.#followers.set(
            id,
            newFollowerState(id, { inIsr: state.isr.includes(id), nowMs: ctx.nowMs }),
          );
          this.#followerEpochs.set(id, ctx.brokerEpoch(id));
        }
        Object.assign(out, {
          role: { role: "leader", leader: me, leaderEpoch: state.leaderEpoch },
          newLeaderEpoch: state.leaderEpoch,
        });
      } else {
        this.#resetReincarnated(state.replicas, ctx);
      }
      const pending = this.#pending;
      if (pending !== null && state.partitionEpoch > pending.sent.partitionEpoch) {
        this.#pending = null;
      }
      this.#partitionEpoch = state.partitionEpoch;
      this.#replicas = state.replicas;
      this.#isr = state.isr;
      this.#recovery = state.leaderRecoveryState;
      for (const id of state.replicas) {
        if (id !== me && !this.#followers.has(id)) {
          this.#followers.set(id, newFollowerState(id, { inIsr: false, nowMs: ctx.nowMs }));
          this.#followerEpochs.set(id, ctx.brokerEpoch(id));
        }
      }
      for (const id of [...this.#followers.keys()]) {
        if (!state.replicas.includes(id)) this.#followers.delete(id);
      }
      const hw = this.#updateHw(ctx.log);
      if (hw !== undefined) out.hw = hw;
      const propose = this.#decide(ctx.nowMs, ctx.log);
      if (propose) out.propose = propose;
      return out;
    }
    // Not (or not yet) the leader: follow the image's leader, or nobody.
    if (
      this.#role !== "leader" && state.leaderEpoch === this.#leaderEpoch &&
      state.partitionEpoch < this.#partitionEpoch
    ) {
      return {};
    }
    const wasLeader = this.#role === "leader";
    const leader = state.leader === me ? -1 : state.leader;
    const role: PartitionRole = leader === -1 ? "none" : "follower";
    const changed = wasLeader || this.#role !== role || this.#leaderId !== leader ||
      this.#leaderEpoch !== state.leaderEpoch;
    this.#role = role;
    this.#leaderId = leader;
    this.#leaderEpoch = state.leaderEpoch;
    this.#partitionEpoch = state.partitionEpoch;
    this.#replicas = state.replicas;
    this.#isr = state.isr;
    this.#recovery = state.leaderRecoveryState;
    this.#followers = new Map();
    this.#followerEpochs = new Map();
    // Leadership only held (not lost to another replica): an unresolved proposal of this
    // epoch stays, for when this node leads again.
    const held = state.leader === me && this.#pending?.sent.leaderEpoch === state.leaderEpoch &&
      state.partitionEpoch <= this.#pending.sent.partitionEpoch;
    if (!held) this.#pending = null;
    if (wasLeader) out.failAcks = ErrorCode.NOT_LEADER_OR_FOLLOWER;
    if (changed) out.role = { role, leader, leaderEpoch: state.leaderEpoch };
    return out;
  }

  /**
   * Stops acting as leader without an image change, for good in this leader epoch: the
   * controller said a newer one exists (FENCED_LEADER_EPOCH).
   */
  stepDown(reason: string): CoreOutput {
    if (this.#role !== "leader") return {};
    this.#fencedEpoch = Math.max(this.#fencedEpoch, this.#leaderEpoch);
    this.#role = "none";
    this.#leaderId = -1;
    this.#followers = new Map();
    this.#followerEpochs = new Map();
    this.#pending = null;
    return {
      failAcks: ErrorCode.NOT_LEADER_OR_FOLLOWER,
      role: { role: "none", leader: -1, leaderEpoch: this.#leaderEpoch },
      note: `stopped leading in epoch ${this.#leaderEpoch}: ${reason}`,
    };
  }

  /** Leader: follower `id` fetched at `fetchOffset` (everything below is durable there). */
  followerFetched(id: number, fetchOffset: number, nowMs: number, log: LogOffsets): CoreOutput {
    const state = this.#followers.get(id);
    if (this.#role !== "leader" || state === undefined) return {};
    this.#followers.set(
      id,
      updateFollowerFetchState(state, {
        fetchOffset,
        fetchTimeMs: nowMs,
        leaderEnd: log.logEnd,
      }),
    );
    const out: CoreOutput = {};
    const hw = this.#updateHw(log);
    if (hw !== undefined) out.hw = hw;
    if (!this.#isr.includes(id)) {
      const propose = this.#decide(nowMs, log);
      if (propose) out.propose = propose;
    }
    return out;
  }

  /** The local log's durable end moved (or anything else the HW depends on). */
  logAdvanced(log: LogOffsets): CoreOutput {
    const hw = this.#updateHw(log);
    return hw === undefined ? {} : { hw };
  }

  /**
   * Follower: the leader's high watermark from a fetch response, capped at this log's
   * end (the follower may not have the data yet). Returns whether it changed.
   */
  setFollowerHighWatermark(leaderHw: number, log: LogOffsets): boolean {
    if (this.#role === "leader") return false;
    const hw = Math.max(log.logStart, Math.min(leaderHw, log.logEnd));
    if (hw === this.#hw) return false;
    this.#hw = hw;
    return true;
  }

  /** After a truncation or a restart of the log: the HW back within the log. */
  clampHighWatermark(log: LogOffsets): void {
    this.#hw = Math.max(log.logStart, Math.min(this.#hw, log.logEnd));
  }

  /** Periodic: ISR shrink/expansion, and re-sending an answer-less proposal. */
  tick(nowMs: number, log: LogOffsets): CoreOutput {
    if (this.#role !== "leader") return {};
    const propose = this.#decide(nowMs, log);
    return propose ? { propose } : {};
  }

  /** The controller's answer to `sent` (ignored if it is not the proposal in flight). */
  answered(sent: IsrProposal, answer: IsrAnswer, nowMs: number, log: LogOffsets): CoreOutput {
    const pending = this.#pending;
    if (pending === null || pending.sent !== sent) return {};
    if (answer.kind === "unknown") {
      pending.attempts++;
      pending.retryAtMs = nowMs +
        Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(pending.attempts - 1, 5));
      return {};
    }
    const out: CoreOutput = {};
    switch (answer.errorCode) {
      case ErrorCode.NONE: {
        const st = answer.state;
        if (
          !st || st.leaderEpoch !== this.#leaderEpoch || st.partitionEpoch < this.#partitionEpoch
        ) {
          // Out of date: the image will tell.
          pending.retryAtMs = null;
          return {};
        }
        this.#pending = null;
        this.#isr = st.isr;
        this.#partitionEpoch = st.partitionEpoch;
        if (st.leaderRecoveryState !== undefined) this.#recovery = st.leaderRecoveryState;
        out.note = `ISR is now ${st.isr.join(",")} (partition epoch ${st.partitionEpoch})`;
        break;
      }
      case ErrorCode.INELIGIBLE_REPLICA:
      case ErrorCode.OPERATION_NOT_ATTEMPTED:
      case ErrorCode.INVALID_REQUEST:
        // The partition epoch was current and nothing was applied: back to the committed ISR.
        this.#pending = null;
        out.note = `ISR change to ${sent.newIsr.join(",")} refused (error ${answer.errorCode})`;
        break;
      case ErrorCode.FENCED_LEADER_EPOCH:
        if (this.#role === "leader") {
          return this.stepDown("the controller knows a newer leader epoch");
        }
        this.#fencedEpoch = Math.max(this.#fencedEpoch, sent.leaderEpoch);
        this.#pending = null;
        return {};
      case ErrorCode.INVALID_UPDATE_VERSION:
      case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
      case ErrorCode.UNKNOWN_TOPIC_ID:
      case ErrorCode.NOT_LEADER_OR_FOLLOWER:
      case ErrorCode.STALE_BROKER_EPOCH:
      case ErrorCode.NEW_LEADER_ELECTED:
        // The controller has moved on; the image will bring its state. Until then the
        // proposal stays pending (its additions keep counting in the HW).
        pending.retryAtMs = null;
        out.note = `ISR change to ${
          sent.newIsr.join(",")
        } not applied (error ${answer.errorCode}); waiting for the metadata`;
        return out;
      default:
        pending.attempts++;
        pending.retryAtMs = nowMs + RETRY_MAX_MS;
        return { note: `ISR change failed with error ${answer.errorCode}; retrying` };
    }
    // The next decision waits for the next fetch or tick: a refused change re-proposed at
    // once would hammer the controller with the same refusal.
    const hw = this.#updateHw(log);
    if (hw !== undefined) out.hw = hw;
    return out;
  }

  /** KIP-903: a follower that re-registered starts over with unknown fetch state. */
  #resetReincarnated(replicas: readonly number[], ctx: ImageContext): void {
    for (const id of replicas) {
      if (id === this.#cfg.nodeId) continue;
      const epoch = ctx.brokerEpoch(id);
      const known = this.#followerEpochs.get(id);
      if (known !== undefined && known !== epoch) {
        this.#followers.set(id, newFollowerState(id, { inIsr: false, nowMs: ctx.nowMs }));
        this.#followerEpochs.set(id, epoch);
      }
    }
  }

  #updateHw(log: LogOffsets): number | undefined {
    if (this.#role !== "leader") return undefined;
    const ends = new Map<number, number>();
    for (const [id, f] of this.#followers) if (f.logEndOffset >= 0) ends.set(id, f.logEndOffset);
    const hw = highWatermark({
      leaderDurableEnd: log.durableEnd,
      isr: this.maximalIsr,
      leaderId: this.#cfg.nodeId,
      followerDurableEnds: ends,
      currentHw: Math.max(this.#hw, log.logStart),
    });
    if (hw <= this.#hw) return undefined;
    this.#hw = hw;
    return hw;
  }

  /** The ISR change to propose now, if any and none is unresolved. */
  #decide(nowMs: number, log: LogOffsets): IsrProposal | undefined {
    const pending = this.#pending;
    if (pending !== null) {
      if (pending.retryAtMs === null || nowMs < pending.retryAtMs) return undefined;
      pending.retryAtMs = null;
      return pending.sent;
    }
    const me = this.#cfg.nodeId;
    const d = isrDecisions({
      leaderId: me,
      isr: this.#isr,
      replicas: this.#replicas,
      ineligible: this.#replicas.filter((r) => r !== me && !this.#eligible(r)),
      followers: [...this.#followers.values()],
      leaderEnd: log.logEnd,
      hw: this.#hw,
      leaderEpochStartOffset: this.#epochStart,
      nowMs,
      replicaLagTimeMaxMs: this.#cfg.replicaLagTimeMaxMs,
    });
    // Until the controller knows this leader has recovered, only that report may go out.
    const newIsr = this.#recovery === 1
      ? [me]
      : [...this.#isr.filter((r) => !d.shrink.includes(r)), ...d.expand];
    if (this.#recovery === 0 && sameList(newIsr, this.#isr)) return undefined;
    const sent: IsrProposal = {
      leaderEpoch: this.#leaderEpoch,
      partitionEpoch: this.#partitionEpoch,
      newIsr,
      leaderRecoveryState: 0,
    };
    this.#pending = { sent, retryAtMs: null, attempts: 0 };
    return sent;
  }
}
