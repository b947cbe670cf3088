/**
 * One classic group's in-memory state (Kafka's GroupMetadata + MemberMetadata), with the
 * bookkeeping that does not decide anything: membership maps, protocol votes, offsets.
 * The decisions live in `group_coordinator.ts`.
 */

import { ByteReader } from "../protocol/mod.ts";
import { assert } from "../util/assert.ts";

/** Kafka's group states, spelt as DescribeGroups and ListGroups report them. */
export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable" | "Dead";

/** A request whose response the coordinator still owes. */
export interface PendingRequest {
  readonly requestId: number;
  readonly version: number;
}

/** A protocol a member supports, in its preference order. */
export interface MemberProtocol {
  readonly name: string;
  readonly metadata: Uint8Array;
}

/** Kafka's MemberMetadata. */
export interface MemberMetadata {
  memberId: string;
  readonly groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  protocolType: string;
  protocols: MemberProtocol[];
  assignment: Uint8Array;
  /** The member's JoinGroup waiting for the join phase to end (Kafka's awaitingJoinCallback). */
  awaitingJoin: PendingRequest | null;
  /** The member's SyncGroup waiting for the leader's assignment (awaitingSyncCallback). */
  awaitingSync: PendingRequest | null;
  /** Joined in the current join phase and never completed one (KIP-394 new member timeout). */
  isNew: boolean;
  /** When its session (or new-member join timeout) expires; null while suspended. */
  heartbeatDeadlineMs: number | null;
}

/** A committed offset (Kafka's OffsetAndMetadata with its commit record's timestamps). */
export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
  commitTimestampMs: number;
  expireTimestampMs: number | null;
}

/**
 * An OffsetCommit whose record is not durable yet (Kafka's pendingOffsetCommits entry):
 * `appendId` names the coordinator output that carries its record.
 */
export interface PendingOffsetCommit {
  appendId: number;
  offset: CommittedOffset;
}

/** The join-phase timer: Kafka's InitialDelayedJoin or DelayedJoin. */
export type JoinTimer =
  | { kind: "initial"; deadlineMs: number; delayMs: number; remainingMs: number }
  | { kind: "normal"; deadlineMs: number };

/** Kafka's GroupMetadata. */
export class GroupMetadata {
  readonly groupId: string;
  state: GroupState = "Empty";
  stateTimestampMs: number;
  generationId = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leaderId: string | null = null;
  /** In join order (Kafka uses a hash map; insertion order keeps us deterministic). */
  readonly members = new Map<string, MemberMetadata>();
  /** group.instance.id → member id. */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, → when they expire. */
  readonly pendingMembers = new Map<string, number>();
  /** Members of the current generation that have not sent SyncGroup yet. */
  readonly pendingSyncMembers = new Set<string>();
  /** A new member joined during the initial delay (extends InitialDelayedJoin). */
  newMemberAdded = false;
  /** Topics the consumer-protocol members subscribe to; null if unknown. */
  subscribedTopics: Set<string> | null = null;
  /** topic → partition → offset: the durable commits, the only ones OffsetFetch shows. */
  readonly offsets = new Map<string, Map<number, CommittedOffset>>();
  /** The append that wrote each durable offset (0: loaded), by `offsetKey`. */
  readonly #offsetAppends = new Map<string, number>();
  /** The latest commit per partition whose append is in flight, by `offsetKey`. */
  readonly #pendingOffsets = new Map<string, PendingOffsetCommit>();
  /**
   * Transactional commits (TxnOffsetCommit) waiting for their transaction's marker, from the
   * moment they are staged (their append may still be in flight): producer id →
   * `offsetKey` → offset (Kafka's pendingTransactionalOffsetCommits).
   */
  readonly #pendingTxnOffsets = new Map<
    bigint,
    Map<string, { offset: CommittedOffset; appendId: number; appended: boolean }>
  >();
  joinTimer: JoinTimer | null = null;
  syncTimer: { deadlineMs: number; generationId: number } | null = null;

  constructor(groupId: string, nowMs: number) {
    this.groupId = groupId;
    this.stateTimestampMs = nowMs;
  }

  transitionTo(state: GroupState, nowMs: number): void {
    this.state = state;
    this.stateTimestampMs = nowMs;
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  /** Max rebalance timeout of the members (Kafka's group.rebalanceTimeoutMs), 0 if none. */
  rebalanceTimeoutMs(): number {
    let max = 0;
    for (const m of this.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
    return max;
  }

  numAwaitingJoin(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.awaitingJoin !== null) n++;
    return n;
  }

  hasAllMembersJoined(): boolean {
    return this.members.size === this.numAwaitingJoin() && this.pendingMembers.size === 0;
  }

  /** How many members support each protocol. */
  supportedProtocols(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const m of this.members.values()) {
      for (const name of new Set(m.protocols.map((p) => p.name))) {
        counts.set(name, (counts.get(name) ?? 0) + 1);
      }
    }
    return counts;
  }

  /** Kafka's supportsProtocols: may a member with these protocols join? */
  supportsProtocols(protocolType: string, names: readonly string[]): boolean {
    if (this.state === "Empty") return protocolType !== "" && names.length > 0;
    if (this.protocolType !== protocolType) return false;
    const counts = this.supportedProtocols();
    return names.some((n) => counts.get(n) === this.members.size);
  }

  /**
   * Kafka's selectProtocol: each member votes for its most preferred protocol among those
   * all members support; most votes wins (ties: the first voted for, in member order).
   */
  selectProtocol(): string {
    const counts = this.supportedProtocols();
    const candidates = new Set<string>();
    for (const [name, n] of counts) if (n === this.members.size) candidates.add(name);
    const votes = new Map<string, number>();
    for (const m of this.members.values()) {
      const choice = m.protocols.find((p) => candidates.has(p.name));
      if (choice !== undefined) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
    }
    let best: string | null = null;
    let bestVotes = 0;
    for (const [name, n] of votes) {
      if (n > bestVotes) {
        best = name;
        bestVotes = n;
      }
    }
    assert(best !== null, `No protocol supported by every member of group ${this.groupId}`);
    return best;
  }

  /** Adds a member (Kafka's GroupMetadata.add). */
  add(member: MemberMetadata): void {
    if (member.groupInstanceId !== null) {
      this.staticMembers.set(member.groupInstanceId, member.memberId);
    }
    if (this.members.size === 0) this.protocolType = member.protocolType;
    if (this.leaderId === null) this.leaderId = member.memberId;
    this.members.set(member.memberId, member);
    this.pendingMembers.delete(member.memberId);
  }

  /** Removes a member (Kafka's GroupMetadata.remove); its pending requests are the caller's. */
  remove(memberId: string): void {
    const member = this.members.get(memberId);
    if (member !== undefined) {
      this.members.delete(memberId);
      if (member.groupInstanceId !== null) this.staticMembers.delete(member.groupInstanceId);
    }
    if (this.isLeader(memberId)) {
      const next = this.members.keys().next();
      this.leaderId = next.done ? null : next.value;
    }
    this.pendingMembers.delete(memberId);
    this.pendingSyncMembers.delete(memberId);
    if (this.pendingSyncMembers.size === 0) this.syncTimer = null;
  }

  /** Kafka's maybeElectNewJoinedLeader: keep a rejoined leader, else any rejoined member. */
  maybeElectNewJoinedLeader(): boolean {
    if (this.leaderId === null) return false;
    const leader = this.members.get(this.leaderId);
    if (leader !== undefined && leader.awaitingJoin !== null) return true;
    for (const m of this.members.values()) {
      if (m.awaitingJoin !== null) {
        this.leaderId = m.memberId;
        return true;
      }
    }
    return false;
  }

  /** Kafka's computeSubscribedTopics (parses the v0 prefix of ConsumerProtocolSubscription). */
  computeSubscribedTopics(): Set<string> | null {
    if (this.protocolType !== "consumer") return null;
    if (this.members.size === 0) return new Set();
    if (this.protocolName === null) return null;
    const topics = new Set<string>();
    try {
      for (const m of this.members.values()) {
        const metadata = m.protocols.find((p) => p.name === this.protocolName)?.metadata;
        if (metadata === undefined) return null;
        for (const t of subscriptionTopics(metadata)) topics.add(t);
      }
    } catch {
      // Kafka: a subscription it cannot parse makes the topics unknown (all count as subscribed).
      return null;
    }
    return topics;
  }

  offset(topic: string, partition: number): CommittedOffset | undefined {
    return this.offsets.get(topic)?.get(partition);
  }

  /** Makes `o` the durable offset; `appendId` is the append that wrote it (0: loaded). */
  setOffset(topic: string, partition: number, o: CommittedOffset, appendId = 0): void {
    let t = this.offsets.get(topic);
    if (t === undefined) this.offsets.set(topic, t = new Map());
    t.set(partition, o);
    this.#offsetAppends.set(offsetKey(topic, partition), appendId);
  }

  /** The append that wrote the durable offset, or undefined if there is none. */
  offsetAppendId(topic: string, partition: number): number | undefined {
    return this.#offsetAppends.get(offsetKey(topic, partition));
  }

  /** Removes the durable offset and any commit in flight (Kafka's removeOffsets). */
  deleteOffset(topic: string, partition: number): boolean {
    const pending = this.#pendingOffsets.delete(offsetKey(topic, partition));
    const t = this.offsets.get(topic);
    if (t === undefined || !t.delete(partition)) return pending;
    if (t.size === 0) this.offsets.delete(topic);
    this.#offsetAppends.delete(offsetKey(topic, partition));
    return true;
  }

  pendingOffset(topic: string, partition: number): PendingOffsetCommit | undefined {
    return this.#pendingOffsets.get(offsetKey(topic, partition));
  }

  /** Stages a commit (Kafka's prepareOffsetCommit); a later one for the partition replaces it. */
  setPendingOffset(topic: string, partition: number, pending: PendingOffsetCommit): void {
    this.#pendingOffsets.set(offsetKey(topic, partition), pending);
  }

  /** Drops the staged commit of `appendId`, unless a later commit replaced it. */
  clearPendingOffset(topic: string, partition: number, appendId: number): void {
    const key = offsetKey(topic, partition);
    if (this.#pendingOffsets.get(key)?.appendId === appendId) this.#pendingOffsets.delete(key);
  }

  /** Partitions with a commit in flight, sorted by topic, then partition. */
  pendingPartitions(): { topic: string; partition: number }[] {
    return [...this.#pendingOffsets.keys()].map(parseOffsetKey).sort((a, b) =>
      a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
    );
  }

  /** Durable offsets or commits in flight (Kafka's hasOffsets counts both). */
  hasOffsets(): boolean {
    return this.offsets.size > 0 || this.#pendingOffsets.size > 0 ||
      this.#pendingTxnOffsets.size > 0;
  }

  /**
   * Stages a transactional commit of `producerId` until its transaction ends; `appendId`
   * is the append that writes it (0: loaded, newer than every loaded offset), `appended`
   * whether that append is durable.
   */
  addPendingTxnOffset(
    producerId: bigint,
    topic: string,
    partition: number,
    o: CommittedOffset,
    appendId: number,
    appended: boolean,
  ) {
    let m = this.#pendingTxnOffsets.get(producerId);
    if (m === undefined) this.#pendingTxnOffsets.set(producerId, m = new Map());
    m.set(offsetKey(topic, partition), { offset: o, appendId, appended });
  }

  /**
   * The append `appendId` of `producerId`'s commits is durable (`durable`) or failed: its
   * commits may now be applied by a commit marker, or are dropped.
   */
  txnAppendDone(producerId: bigint, appendId: number, durable: boolean): void {
    const m = this.#pendingTxnOffsets.get(producerId);
    if (m === undefined) return;
    for (const [key, e] of m) {
      if (e.appendId !== appendId) continue;
      if (durable) e.appended = true;
      else m.delete(key);
    }
    if (m.size === 0) this.#pendingTxnOffsets.delete(producerId);
  }

  /** Whether a transaction has a commit for the partition that is not decided yet. */
  hasPendingTxnOffset(topic: string, partition: number): boolean {
    const key = offsetKey(topic, partition);
    for (const m of this.#pendingTxnOffsets.values()) if (m.has(key)) return true;
    return false;
  }

  /** Whether `producerId` has transactional commits waiting here. */
  hasPendingTxn(producerId: bigint): boolean {
    return this.#pendingTxnOffsets.has(producerId);
  }

  /**
   * Ends `producerId`'s transaction: its commits become the durable offsets (commit) or
   * are dropped (abort). Returns whether it had any here.
   */
  completeTxn(producerId: bigint, commit: boolean): boolean {
    const m = this.#pendingTxnOffsets.get(producerId);
    if (m === undefined) return false;
    this.#pendingTxnOffsets.delete(producerId);
    if (commit) {
      for (const [key, { offset, appendId, appended }] of m) {
        // A commit whose append is not durable is not part of the transaction's log (the
        // client waits for its answer before it ends the transaction; Kafka asserts this).
        if (!appended) continue;
        const { topic, partition } = parseOffsetKey(key);
        // As Kafka: a commit written after the transaction's (a plain OffsetCommit that
        // came between it and the marker) stays.
        const current = this.offsetAppendId(topic, partition);
        if (current === undefined || current <= appendId) {
          this.setOffset(topic, partition, offset, appendId);
        }
      }
    }
    return true;
  }

  /** All committed offsets sorted by topic, then partition. */
  allOffsets(): { topic: string; partition: number; offset: CommittedOffset }[] {
    const out: { topic: string; partition: number; offset: CommittedOffset }[] = [];
    for (const topic of [...this.offsets.keys()].sort()) {
      const parts = this.offsets.get(topic)!;
      for (const p of [...parts.keys()].sort((a, b) => a - b)) {
        out.push({ topic, partition: p, offset: parts.get(p)! });
      }
    }
    return out;
  }
}

function offsetKey(topic: string, partition: number): string {
  return `${partition}\u0000${topic}`;
}

function parseOffsetKey(key: string): { topic: string; partition: number } {
  const i = key.indexOf("\u0000");
  return { topic: key.slice(i + 1), partition: Number(key.slice(0, i)) };
}

/** The topics of a ConsumerProtocolSubscription: int16 version, then v0's topic array. */
export function subscriptionTopics(metadata: Uint8Array): string[] {
  const r = new ByteReader(metadata);
  const version = r.int16();
  if (version < 0) throw new RangeError(`Cannot read subscription: version ${version}`);
  const n = r.checkCount(r.int32(), 2, "topics");
  const topics: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.string(false);
    if (t === null) throw new RangeError("Cannot read subscription: null topic");
    topics.push(t);
  }
  return topics;
}

/** Whether two protocol lists are equal (Kafka's MemberMetadata.matches). */
export function sameProtocols(a: readonly MemberProtocol[], b: readonly MemberProtocol[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || !sameBytes(x.metadata, y.metadata)) return false;
  }
  return true;
}

/** Byte-wise equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
