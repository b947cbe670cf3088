/**
 * The pure Raft core (etcd's `RawNode` shape): no timers, sockets, files or ambient
 * randomness. Inputs: {@linkcode RaftCore.tick}, {@linkcode RaftCore.step},
 * {@linkcode RaftCore.propose}, {@linkcode RaftCore.proposeConfChange},
 * {@linkcode RaftCore.transferLeadership}, {@linkcode RaftCore.compact}; output:
 * {@linkcode RaftCore.ready}, acknowledged by {@linkcode RaftCore.advance}.
 *
 * Features: pre-vote and check-quorum (thesis §9.6, §6.2), fast conflict back-off,
 * commit by counting only current-term entries (§5.4.2), leadership transfer (thesis
 * §3.10), learners, single-server membership changes that take effect when appended
 * (thesis §4.1), snapshots with InstallSnapshot (§7).
 */
import { assert } from "../util/assert.ts";
import type { Random } from "../util/random.ts";
import {
  applyConfChange,
  type ConfChange,
  type ConfState,
  decodeConfState,
  encodeConfState,
  type Entry,
  EntryType,
  type HardState,
  makeMessage,
  type Message,
  MessageType,
  messageTypeName,
  NONE,
  type Snapshot,
} from "./messages.ts";
import { Progress, type ProgressState } from "./progress.ts";
import { committedIndex, voteResult } from "./quorum.ts";
import { RaftLog } from "./raft_log.ts";

/** The role a node plays in its current term. */
export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** Minimal logger the core writes to (a LogTape `Logger` fits). */
export interface RaftLogger {
  debug(message: string, properties?: Record<string, unknown>): void;
  info(message: string, properties?: Record<string, unknown>): void;
  warn(message: string, properties?: Record<string, unknown>): void;
}

const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

/** What the core starts from: the persisted state recovered by storage, if any. */
export interface RaftCoreOptions {
  /** This node's id (≥ 1). */
  id: number;
  /** Membership when the log and snapshot hold none (a fresh cluster). */
  initialConf: ConfState;
  /** Minimum election timeout in ticks; each timeout is drawn from [n, 2n). @default 10 */
  electionTicks?: number;
  /** Heartbeat interval in ticks. @default 1 */
  heartbeatTicks?: number;
  /** Seeded source for election timeouts. */
  random: Random;
  /** Pre-vote (thesis §9.6). @default true */
  preVote?: boolean;
  /** Check-quorum and leader lease (thesis §6.2, §4.2.3). @default true */
  checkQuorum?: boolean;
  /** Soft limit on the entry bytes of one append message. @default 1 MiB */
  maxSizePerMsg?: number;
  /** Unacknowledged appends per follower in replicate state. @default 256 */
  maxInflight?: number;
  /** Recovered hard state. */
  hardState?: HardState;
  /** Recovered snapshot (its `data` is kept to send to lagging followers). */
  snapshot?: Snapshot;
  /** Recovered entries following the snapshot (contiguous). */
  entries?: Entry[];
  logger?: RaftLogger;
}

/**
 * One batch of work for the driver. Contract (DESIGN §6), in this order:
 * 1. send `messages` (they need no persistence);
 * 2. persist `snapshot` (if any), then `entries` (truncating the stored log at
 *    `entries[0].index`), then `hardState` (if any) — fsync when `mustSync`;
 * 3. send `messagesAfterPersist` (votes, append acks: thesis §3.8);
 * 4. restore the state machine from `snapshot` (if any), then apply `committedEntries`;
 * 5. call {@linkcode RaftCore.advance} with this Ready. No other core call in between.
 */
export interface Ready {
  readonly messages: Message[];
  readonly messagesAfterPersist: Message[];
  readonly entries: Entry[];
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly committedEntries: Entry[];
  readonly mustSync: boolean;
}

/** Replication state of one peer as the leader sees it. */
export interface PeerStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
}

/** A snapshot of the core's externally visible state. */
export interface CoreStatus {
  readonly id: number;
  readonly role: Role;
  readonly term: number;
  readonly vote: number;
  readonly leader: number;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly conf: ConfState;
  /** Per-peer progress; only on the leader. */
  readonly progress: ReadonlyMap<number, PeerStatus>;
}

/** Why the core refused a proposal. */
export type ProposeRefusal = "notLeader" | "transferring" | "confChangePending" | "invalidConf";

/** Result of a proposal: the index/term it got, or why it was refused. */
export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly reason: ProposeRefusal; readonly leader: number };

type CampaignType = "preElection" | "election" | "transfer";

/**
 * The Raft state machine of one node. Thread-unsafe and synchronous by design.
 *
 * @example
 * ```ts
 * import { RaftCore } from "./core.ts";
 * import { Random } from "../util/random.ts";
 *
 * const core = new RaftCore({
 *   id: 1,
 *   initialConf: { voters: [1], learners: [] },
 *   random: new Random(1),
 * });
 * core.campaign(); // a single voter elects itself at once
 * const res = core.propose(new TextEncoder().encode("hello"));
 * if (!res.ok) throw new Error("expected to lead");
 * const applied: number[] = [];
 * while (core.hasReady()) {
 *   const rd = core.ready();
 *   // send rd.messages; persist rd.entries/rd.hardState; send rd.messagesAfterPersist
 *   for (const e of rd.committedEntries) applied.push(e.index);
 *   core.advance(rd);
 * }
 * if (applied.at(-1) !== res.index) throw new Error("not applied");
 * ```
 */
export class RaftCore {
  readonly id: number;
  #term = 0;
  #vote = NONE;
  #lead = NONE;
  #role: Role = "follower";
  readonly #log: RaftLog;
  #conf: ConfState;
  #progress = new Map<number, Progress>();
  #votes = new Map<number, boolean>();
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #leadTransferee = NONE;
  /** Index of the last conf change the leader appended (a new one waits for its commit). */
  #pendingConfIndex = 0;
  #msgs: Message[] = [];
  #msgsAfter: Message[] = [];
  #prevHard: HardState;
  #readyOut = false;

  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #random: Random;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #maxSizePerMsg: number;
  readonly #maxInflight: number;
  readonly #logger: RaftLogger;

  constructor(options: RaftCoreOptions) {
    assert(Number.isSafeInteger(options.id) && options.id > 0, "Node id must be ≥ 1");
    this.id = options.id;
    this.#electionTicks = options.electionTicks ?? 10;
    this.#heartbeatTicks = options.heartbeatTicks ?? 1;
    assert(this.#heartbeatTicks < this.#electionTicks, "heartbeatTicks must be < electionTicks");
    this.#random = options.random;
    this.#preVote = options.preVote ?? true;
    this.#checkQuorum = options.checkQuorum ?? true;
    this.#maxSizePerMsg = options.maxSizePerMsg ?? 1 << 20;
    this.#maxInflight = options.maxInflight ?? 256;
    this.#logger = options.logger ?? silentLogger;
    const snapshot = options.snapshot ??
      { index: 0, term: 0, conf: options.initialConf, data: new Uint8Array(0) };
    const hs = options.hardState ?? { term: 0, vote: NONE, commit: 0 };
    this.#log = new RaftLog(snapshot, [...(options.entries ?? [])], hs.commit);
    // ready() persists only commit indexes covered by durable entries; RaftLog still
    // clamps the commit to the recovered log as a second line of defence.
    this.#term = hs.term;
    this.#vote = hs.vote;
    if (this.#log.lastTerm() > this.#term) {
      // Entries were made durable but the hard state of their term was not (a crash
      // between the two writes): our term is at least the last entry's.
      this.#term = this.#log.lastTerm();
      this.#vote = NONE;
    }
    this.#prevHard = { term: hs.term, vote: hs.vote, commit: this.#log.committed };
    this.#conf = this.#log.confAt(this.#log.lastIndex(), decodeConfState);
    this.becomeFollower(this.#term, NONE);
  }

  // ---- inspection -------------------------------------------------------------------

  get term(): number {
    return this.#term;
  }
  get vote(): number {
    return this.#vote;
  }
  get leader(): number {
    return this.#lead;
  }
  get role(): Role {
    return this.#role;
  }
  get conf(): ConfState {
    return this.#conf;
  }
  get commit(): number {
    return this.#log.committed;
  }
  get applied(): number {
    return this.#log.applied;
  }
  get lastIndex(): number {
    return this.#log.lastIndex();
  }
  get firstIndex(): number {
    return this.#log.firstIndex();
  }
  /** Snapshot the log currently starts after. */
  get snapshot(): Snapshot {
    return this.#log.snapshot;
  }
  /** The entry at `index` if it is in memory (not compacted). */
  entry(index: number): Entry | undefined {
    return this.#log.entry(index);
  }
  /** Term at `index`, undefined if compacted (below the snapshot) or absent. */
  termAt(index: number): number | undefined {
    return this.#log.term(index);
  }
  /** Whether this node is a voter in its current configuration. */
  isVoter(id = this.id): boolean {
    return this.#conf.voters.includes(id);
  }

  status(): CoreStatus {
    const progress = new Map<number, PeerStatus>();
    if (this.#role === "leader") {
      for (const [id, pr] of this.#progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
        });
      }
    }
    return {
      id: this.id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leader: this.#lead,
      commit: this.#log.committed,
      applied: this.#log.applied,
      lastIndex: this.#log.lastIndex(),
      conf: this.#conf,
      progress,
    };
  }

  // ---- inputs -----------------------------------------------------------------------

  /** Advances logical time by one tick (election timeout, heartbeats, check-quorum). */
  tick(): void {
    this.#assertNoReady();
    if (this.#role === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  /** Starts an election now (as if the election timer fired), if this node may. */
  campaign(): void {
    this.#assertNoReady();
    if (this.#role === "leader") return;
    this.#campaign(this.#preVote ? "preElection" : "election");
  }

  /**
   * The leader is known to be gone (e.g. its connection dropped, as on `kill -9`): stop
   * honouring its lease and campaign after a short random delay (1 to electionTicks/2
   * ticks, so followers seldom split the vote) instead of a full election timeout.
   * Affects only liveness: safety never rests on timing. (etcd's ForgetLeader.)
   */
  forgetLeader(): void {
    this.#assertNoReady();
    if (this.#role !== "follower" || this.#lead === NONE) return;
    this.#logger.info("Node {id} forgets leader {lead} at term {term}", {
      id: this.id,
      lead: this.#lead,
      term: this.#term,
    });
    this.#lead = NONE;
    const soon = this.#random.int(1, Math.max(1, Math.floor(this.#electionTicks / 2)));
    this.#electionElapsed = Math.max(
      this.#electionElapsed,
      this.#randomizedElectionTimeout - soon,
    );
  }

  /** Proposes application data; only a leader (not transferring) accepts. */
  propose(data: Uint8Array): ProposeResult {
    this.#assertNoReady();
    if (this.#role !== "leader") return { ok: false, reason: "notLeader", leader: this.#lead };
    if (this.#leadTransferee !== NONE) {
      return { ok: false, reason: "transferring", leader: this.#lead };
    }
    const index = this.#appendEntry(EntryType.Normal, data);
    this.#bcastAppend();
    return { ok: true, index, term: this.#term };
  }

  /**
   * Proposes a single-server membership change. Refused while an earlier change is
   * uncommitted, and before the leader has committed an entry of its own term
   * (thesis §4.1 and the fix to its single-server bug).
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    this.#assertNoReady();
    if (this.#role !== "leader") return { ok: false, reason: "notLeader", leader: this.#lead };
    if (this.#leadTransferee !== NONE) {
      return { ok: false, reason: "transferring", leader: this.#lead };
    }
    if (this.#pendingConfIndex > this.#log.committed) {
      return { ok: false, reason: "confChangePending", leader: this.#lead };
    }
    let next: ConfState;
    try {
      next = applyConfChange(this.#conf, change);
    } catch (err) {
      if (err instanceof RangeError) {
        return { ok: false, reason: "invalidConf", leader: this.#lead };
      }
      throw err;
    }
    const index = this.#appendEntry(EntryType.ConfChange, encodeConfState(next));
    this.#bcastAppend();
    return { ok: true, index, term: this.#term };
  }

  /** Thesis §3.10: hands leadership to `to` once its log is current. False if refused. */
  transferLeadership(to: number): boolean {
    this.#assertNoReady();
    if (this.#role !== "leader" || to === this.id || !this.#conf.voters.includes(to)) return false;
    if (this.#leadTransferee === to) return true;
    this.#leadTransferee = to;
    this.#electionElapsed = 0;
    this.#logger.info("Transferring leadership from {id} to {to} at term {term}", {
      id: this.id,
      to,
      term: this.#term,
    });
    const pr = this.#progress.get(to)!;
    if (pr.match === this.#log.lastIndex()) this.#send({ type: MessageType.TimeoutNow, to });
    else this.#sendAppend(to);
    return true;
  }

  /**
   * Replaces the log up to `index` (≤ applied) by a snapshot with the application's
   * `data`; returns it for the driver to persist (before compacting stored segments).
   */
  compact(index: number, data: Uint8Array): Snapshot {
    this.#assertNoReady();
    const term = this.#log.term(index);
    assert(term !== undefined, `Cannot snapshot at ${index}: not in the log`);
    const snapshot: Snapshot = {
      index,
      term,
      conf: this.#log.confAt(index, decodeConfState),
      data,
    };
    this.#log.compact(snapshot);
    return snapshot;
  }

  /** Handles one message from a peer. */
  step(m: Message): void {
    this.#assertNoReady();
    if (m.to !== this.id) return;
    if (m.term > this.#term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const inLease = this.#checkQuorum && this.#lead !== NONE &&
          this.#electionElapsed < this.#electionTicks;
        if (!m.force && inLease) {
          // Thesis §4.2.3: a node that heard from a leader recently ignores elections.
          this.#logger.debug("Node {id} ignores {type} from {from}: leader lease", {
            id: this.id,
            type: messageTypeName(m.type),
            from: m.from,
          });
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Pre-votes never change our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the term the pre-candidate will use.
      } else if (
        m.type === MessageType.App || m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snap
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.#term) {
      if (
        (this.#checkQuorum || this.#preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A stale leader learns our term and steps down (needed with pre-vote/check-quorum,
        // where our higher term may never reach it otherwise).
        this.#send({ type: MessageType.AppResp, to: m.from });
      } else if (m.type === MessageType.PreVote) {
        this.#send({ type: MessageType.PreVoteResp, to: m.from, reject: true });
      } else if (m.type === MessageType.Vote) {
        // Raft §5.1: reject with our term so the candidate catches up. Without this, a
        // candidate that only stale-term peers would vote for never learns the term it
        // must exceed (seen with membership changes: two nodes with different
        // configurations campaigning forever).
        this.#send({ type: MessageType.VoteResp, to: m.from, reject: true });
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      const canVote = this.#vote === m.from ||
        (this.#vote === NONE && this.#lead === NONE) ||
        (m.type === MessageType.PreVote && m.term > this.#term);
      const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
      if (canVote && this.#log.isUpToDate(m.index, m.logTerm)) {
        this.#logger.debug("Node {id} grants {type} to {from} at term {term}", {
          id: this.id,
          type: messageTypeName(m.type),
          from: m.from,
          term: m.term,
        });
        this.#send({ type: respType, to: m.from, term: m.term });
        if (m.type === MessageType.Vote) {
          this.#electionElapsed = 0;
          this.#vote = m.from;
        }
      } else {
        this.#send({ type: respType, to: m.from, reject: true });
      }
      return;
    }

    switch (this.#role) {
      case "leader":
        this.#stepLeader(m);
        break;
      case "candidate":
      case "preCandidate":
        this.#stepCandidate(m);
        break;
      case "follower":
        this.#stepFollower(m);
        break;
    }
  }

  // ---- output -----------------------------------------------------------------------

  /** Whether {@linkcode RaftCore.ready} has anything to hand out. */
  hasReady(): boolean {
    if (this.#msgs.length > 0 || this.#msgsAfter.length > 0) return true;
    if (this.#log.unstableSnapshot !== undefined) return true;
    if (this.#log.stable < this.#log.lastIndex()) return true;
    if (this.#hardStateChanged()) return true;
    return this.#log.committed > this.#log.applied;
  }

  /** Takes the pending work; see {@linkcode Ready} for the driver's obligations. */
  ready(): Ready {
    this.#assertNoReady();
    const snapshot = this.#log.unstableSnapshot;
    const entries = this.#log.unstableEntries();
    // The hard state may become durable before this Ready's entries (the driver fsyncs
    // them in parallel), so it records only a commit index covered by entries that were
    // durable, and matching the leader, before this Ready: never one that a crash could
    // leave pointing at a stale local entry.
    const safeCommit = Math.min(
      this.#log.committed,
      entries.length > 0 ? entries[0]!.index - 1 : this.#log.stable,
    );
    const hs = { term: this.#term, vote: this.#vote, commit: safeCommit };
    const hardChanged = hs.term !== this.#prevHard.term || hs.vote !== this.#prevHard.vote ||
      hs.commit !== this.#prevHard.commit;
    const from = Math.max(this.#log.applied, this.#log.snapshot.index) + 1;
    const committedEntries = this.#log.committed >= from
      ? this.#log.slice(from, this.#log.committed)
      : [];
    const rd: Ready = {
      messages: this.#msgs,
      messagesAfterPersist: this.#msgsAfter,
      entries,
      hardState: hardChanged ? hs : undefined,
      snapshot,
      committedEntries,
      mustSync: entries.length > 0 || snapshot !== undefined ||
        hs.term !== this.#prevHard.term || hs.vote !== this.#prevHard.vote,
    };
    this.#msgs = [];
    this.#msgsAfter = [];
    this.#readyOut = true;
    return rd;
  }

  /** Acknowledges that `rd` was handled in full (persisted, sent, applied). */
  advance(rd: Ready): void {
    assert(this.#readyOut, "advance() without an outstanding ready()");
    this.#readyOut = false;
    if (rd.snapshot !== undefined) {
      if (this.#log.unstableSnapshot === rd.snapshot) this.#log.unstableSnapshot = undefined;
      this.#log.applied = Math.max(this.#log.applied, rd.snapshot.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) {
      assert(this.#log.term(lastEntry.index) === lastEntry.term, "Log changed during a ready");
      this.#log.stable = Math.max(this.#log.stable, lastEntry.index);
    }
    if (rd.hardState !== undefined) this.#prevHard = rd.hardState;
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) {
      this.#log.applied = Math.max(this.#log.applied, lastCommitted.index);
    }
    if (this.#role === "leader") {
      // The leader counts itself only for entries it has made durable (thesis §10.2.1).
      const self = this.#progress.get(this.id);
      if (self !== undefined) self.maybeUpdate(this.#log.stable);
      if (this.#maybeCommit()) this.#bcastAppend();
    }
  }

  // ---- roles ------------------------------------------------------------------------

  becomeFollower(term: number, lead: number): void {
    const wasLeader = this.#role === "leader";
    this.#reset(term);
    this.#role = "follower";
    this.#lead = lead;
    if (wasLeader || lead !== NONE) {
      this.#logger.info("Node {id} became follower at term {term}, leader {lead}", {
        id: this.id,
        term,
        lead,
      });
    }
  }

  #becomePreCandidate(): void {
    assert(this.#role !== "leader", "A leader cannot become pre-candidate");
    // No term change and no vote: a pre-election must not disturb anyone (thesis §9.6).
    this.#votes = new Map();
    this.#role = "preCandidate";
    this.#lead = NONE;
    this.#logger.debug("Node {id} became pre-candidate at term {term}", {
      id: this.id,
      term: this.#term,
    });
  }

  #becomeCandidate(): void {
    assert(this.#role !== "leader", "A leader cannot become candidate");
    this.#reset(this.#term + 1);
    this.#vote = this.id;
    this.#role = "candidate";
    this.#logger.info("Node {id} became candidate at term {term}", {
      id: this.id,
      term: this.#term,
    });
  }

  #becomeLeader(): void {
    assert(this.#role === "candidate", "Only a candidate becomes leader");
    this.#reset(this.#term);
    this.#role = "leader";
    this.#lead = this.id;
    const last = this.#log.lastIndex();
    for (const id of [...this.#conf.voters, ...this.#conf.learners]) {
      const pr = new Progress(last + 1, this.#maxInflight, this.#conf.learners.includes(id));
      if (id === this.id) {
        pr.match = this.#log.stable;
        pr.becomeReplicate();
      }
      pr.recentActive = true;
      this.#progress.set(id, pr);
    }
    // Conservative: a conf change may be pending in the uncommitted tail; also no new one
    // until an entry of this term commits (the no-op below).
    this.#appendEntry(EntryType.Normal, new Uint8Array(0));
    this.#pendingConfIndex = this.#log.lastIndex();
    this.#logger.info("Node {id} became leader at term {term}", { id: this.id, term: this.#term });
  }

  #reset(term: number): void {
    if (term !== this.#term) {
      this.#term = term;
      this.#vote = NONE;
    }
    this.#lead = NONE;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#electionTicks +
      this.#random.int(0, this.#electionTicks - 1);
    this.#leadTransferee = NONE;
    this.#votes = new Map();
    this.#progress = new Map();
    this.#pendingConfIndex = 0;
  }

  #promotable(): boolean {
    return this.#conf.voters.includes(this.id) && this.#log.unstableSnapshot === undefined;
  }

  #campaign(type: CampaignType): void {
    if (!this.#promotable()) return;
    let voteType: MessageType;
    let term: number;
    if (type === "preElection") {
      this.#becomePreCandidate();
      voteType = MessageType.PreVote;
      term = this.#term + 1;
    } else {
      this.#becomeCandidate();
      voteType = MessageType.Vote;
      term = this.#term;
    }
    this.#votes.set(this.id, true);
    if (voteResult(this.#conf.voters, this.#votes) === "won") {
      if (type === "preElection") this.#campaign("election");
      else this.#becomeLeader();
      return;
    }
    for (const id of this.#conf.voters) {
      if (id === this.id) continue;
      this.#send({
        type: voteType,
        to: id,
        term,
        index: this.#log.lastIndex(),
        logTerm: this.#log.lastTerm(),
        force: type === "transfer",
      });
    }
  }

  // ---- ticks ------------------------------------------------------------------------

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#promotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#campaign(this.#preVote ? "preElection" : "election");
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTicks) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum) {
        // Thesis §6.2: a leader that cannot reach a quorum steps down.
        const active = (id: number) =>
          id === this.id || this.#progress.get(id)?.recentActive === true ? 1 : 0;
        if (committedIndex(this.#conf.voters, active) === 0 && this.#conf.voters.length > 0) {
          this.#logger.info("Leader {id} steps down at term {term}: no quorum active", {
            id: this.id,
            term: this.#term,
          });
          this.becomeFollower(this.#term, NONE);
          return;
        }
        for (const [id, pr] of this.#progress) if (id !== this.id) pr.recentActive = false;
      }
      if (this.#leadTransferee !== NONE) {
        this.#logger.info("Leader {id} aborts transfer to {to}: timed out", {
          id: this.id,
          to: this.#leadTransferee,
        });
        this.#leadTransferee = NONE;
      }
    }
    for (const [id, pr] of this.#progress) {
      if (pr.state === "snapshot" && ++pr.snapshotTicks >= this.#electionTicks) {
        // The snapshot may have been lost: probe again (and resend if still needed).
        pr.becomeProbe();
        this.#sendAppend(id);
      }
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      for (const [id, pr] of this.#progress) {
        if (id === this.id) continue;
        this.#send({
          type: MessageType.Heartbeat,
          to: id,
          commit: Math.min(pr.match, this.#log.committed),
        });
      }
    }
  }

  // ---- per-role message handling ----------------------------------------------------

  #stepLeader(m: Message): void {
    const pr = this.#progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.AppResp: {
        pr.recentActive = true;
        if (m.reject) {
          let hint = m.rejectHint;
          if (m.logTerm > 0) hint = this.#log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
          if (pr.maybeDecrTo(m.index, hint)) {
            if (pr.state === "replicate") pr.becomeProbe();
            this.#sendAppend(m.from);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index)) {
          if (pr.state === "probe") pr.becomeReplicate();
          else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === "replicate") pr.freeLE(m.index);
          if (this.#maybeCommit()) this.#bcastAppend();
          else if (oldPaused) this.#sendAppend(m.from);
          while (this.#sendAppend(m.from, false)) { /* stream while the window allows */ }
          if (m.from === this.#leadTransferee && pr.match === this.#log.lastIndex()) {
            this.#send({ type: MessageType.TimeoutNow, to: m.from });
          }
        }
        return;
      }
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === "replicate" && pr.inflights.length >= pr.maxInflight) {
          pr.inflights.shift();
        }
        if (pr.match < this.#log.lastIndex()) this.#sendAppend(m.from);
        return;
      }
      default:
        return;
    }
  }

  #stepCandidate(m: Message): void {
    const myRespType = this.#role === "preCandidate"
      ? MessageType.PreVoteResp
      : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.#handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        if (m.type !== myRespType) return;
        this.#votes.set(m.from, !m.reject);
        const result = voteResult(this.#conf.voters, this.#votes);
        if (result === "won") {
          if (this.#role === "preCandidate") this.#campaign("election");
          else {
            this.#becomeLeader();
            this.#bcastAppend();
          }
        } else if (result === "lost") {
          this.becomeFollower(this.#term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        // Thesis §3.10: the transfer target starts an election at once, skipping pre-vote.
        this.#logger.info("Node {id} got TimeoutNow from {from} at term {term}", {
          id: this.id,
          from: m.from,
          term: this.#term,
        });
        this.#campaign("transfer");
        return;
      default:
        return;
    }
  }

  #handleAppend(m: Message): void {
    if (m.index < this.#log.committed) {
      this.#send({ type: MessageType.AppResp, to: m.from, index: this.#log.committed });
      return;
    }
    const res = this.#log.maybeAppend(m.index, m.logTerm, m.entries);
    if (res !== undefined) {
      // The configuration can change only if a ConfChange entry was added or removed.
      if (
        res.truncated ||
        (res.appended && m.entries.some((e) => e.type === EntryType.ConfChange))
      ) this.#refreshConf();
      this.#log.commitTo(Math.min(m.commit, res.lastNew));
      this.#send({ type: MessageType.AppResp, to: m.from, index: res.lastNew });
      return;
    }
    const [hintIndex, hintTerm] = this.#log.findConflictByTerm(
      Math.min(m.index, this.#log.lastIndex()),
      m.logTerm,
    );
    this.#send({
      type: MessageType.AppResp,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    });
  }

  #handleHeartbeat(m: Message): void {
    this.#log.commitTo(Math.min(m.commit, this.#log.lastIndex()));
    this.#send({ type: MessageType.HeartbeatResp, to: m.from });
  }

  #handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    if (s.index <= this.#log.committed) {
      this.#send({ type: MessageType.AppResp, to: m.from, index: this.#log.committed });
      return;
    }
    if (this.#log.matchTerm(s.index, s.term)) {
      this.#log.commitTo(s.index);
      this.#send({ type: MessageType.AppResp, to: m.from, index: this.#log.committed });
      return;
    }
    this.#logger.info("Node {id} restores snapshot at {index} (term {snapTerm}) from {from}", {
      id: this.id,
      index: s.index,
      snapTerm: s.term,
      from: m.from,
    });
    this.#log.restore(s);
    this.#conf = s.conf;
    this.#send({ type: MessageType.AppResp, to: m.from, index: s.index });
  }

  // ---- replication ------------------------------------------------------------------

  #appendEntry(type: EntryType, data: Uint8Array): number {
    const index = this.#log.lastIndex() + 1;
    this.#log.truncateAndAppend([{ index, term: this.#term, type, data }]);
    if (type === EntryType.ConfChange) {
      this.#refreshConf();
      this.#pendingConfIndex = index;
    }
    return index;
  }

  /** Recomputes the configuration from the log (thesis §4.1: latest entry wins). */
  #refreshConf(): void {
    const conf = this.#log.confAt(this.#log.lastIndex(), decodeConfState);
    if (conf === this.#conf) return;
    this.#conf = conf;
    this.#logger.info("Node {id} uses configuration voters={voters} learners={learners}", {
      id: this.id,
      voters: conf.voters.join(","),
      learners: conf.learners.join(","),
    });
    if (this.#role !== "leader") return;
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const id of [...this.#progress.keys()]) if (!members.has(id)) this.#progress.delete(id);
    for (const id of members) {
      const isLearner = conf.learners.includes(id);
      const pr = this.#progress.get(id);
      if (pr !== undefined) pr.isLearner = isLearner;
      else {
        const npr = new Progress(this.#log.lastIndex(), this.#maxInflight, isLearner);
        npr.recentActive = true;
        this.#progress.set(id, npr);
      }
    }
    if (this.#leadTransferee !== NONE && !conf.voters.includes(this.#leadTransferee)) {
      this.#leadTransferee = NONE;
    }
  }

  #maybeCommit(): boolean {
    const mci = committedIndex(this.#conf.voters, (id) => this.#progress.get(id)?.match ?? 0);
    // Raft §5.4.2: only entries of the current term are committed by counting.
    if (mci > this.#log.committed && this.#log.term(mci) === this.#term) {
      this.#log.commitTo(mci);
      if (!this.#conf.voters.includes(this.id) && this.#log.committed >= this.#pendingConfIndex) {
        // Thesis §4.2.2: a leader removed from the configuration steps down once the
        // change is committed.
        this.#logger.info("Leader {id} steps down: removed from the configuration", {
          id: this.id,
        });
        this.becomeFollower(this.#term, NONE);
      }
      return true;
    }
    return false;
  }

  #bcastAppend(): void {
    if (this.#role !== "leader") return;
    for (const id of this.#progress.keys()) if (id !== this.id) this.#sendAppend(id);
  }

  /** Sends an append (or snapshot) to `to`; false if nothing was sent. */
  #sendAppend(to: number, sendIfEmpty = true): boolean {
    const pr = this.#progress.get(to);
    if (pr === undefined || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.#log.term(prevIndex);
    if (prevTerm === undefined) {
      if (prevIndex > this.#log.lastIndex()) {
        pr.next = this.#log.lastIndex() + 1;
        return false;
      }
      // Compacted: InstallSnapshot (Raft §7).
      const snapshot = this.#log.snapshot;
      this.#send({ type: MessageType.Snap, to, snapshot });
      pr.becomeSnapshot(snapshot.index);
      this.#logger.debug("Leader {id} sends snapshot {index} to {to}", {
        id: this.id,
        index: snapshot.index,
        to,
      });
      return true;
    }
    const entries = this.#log.slice(pr.next, this.#log.lastIndex(), this.#maxSizePerMsg);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#send({
      type: MessageType.App,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.#log.committed,
    });
    pr.sentEntries(
      entries.length > 0 ? entries[entries.length - 1]!.index : prevIndex,
      entries.length,
    );
    return true;
  }

  #send(fields: Pick<Message, "type" | "to"> & Partial<Message>): void {
    const m = makeMessage({ from: this.id, term: this.#term, ...fields });
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
      case MessageType.TimeoutNow:
      case MessageType.PreVote:
      case MessageType.PreVoteResp:
        // Leader traffic and pre-votes promise nothing about our durable state.
        this.#msgs.push(m);
        break;
      default:
        // Votes, vote grants and acknowledgements may go out only once our term, vote
        // and log are durable (thesis §3.8).
        this.#msgsAfter.push(m);
    }
  }

  #hardStateChanged(): boolean {
    return this.#term !== this.#prevHard.term || this.#vote !== this.#prevHard.vote ||
      this.#log.committed !== this.#prevHard.commit;
  }

  #assertNoReady(): void {
    assert(!this.#readyOut, "Core called between ready() and advance()");
  }
}
