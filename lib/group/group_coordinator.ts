/**
 * The classic consumer-group coordinator as a pure state machine: Kafka's GroupCoordinator
 * (Scala, 3.x) without threads, purgatories or a log. Requests and timer ticks go in; the
 * responses now due and the records to persist first come out.
 */

import type { Logger } from "@logtape/logtape";
import {
  ApiKey,
  type DeepPartial,
  type DeleteGroupsRequest,
  type DescribeGroupsRequest,
  type DescribeGroupsResponse,
  ErrorCode,
  type HeartbeatRequest,
  type JoinGroupRequest,
  type LeaveGroupRequest,
  type ListGroupsRequest,
  type ListGroupsResponse,
  type OffsetCommitRequest,
  type OffsetDeleteRequest,
  type OffsetFetchRequest,
  type OffsetFetchResponse,
  type SyncGroupRequest,
  type TxnOffsetCommitRequest,
} from "../protocol/mod.ts";
import { assert } from "../util/assert.ts";
import { getLogger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import { DEFAULT_GROUP_CONFIG, type GroupCoordinatorConfig } from "./config.ts";
import { groupPartition } from "./group_partition.ts";
import type { GroupRecord } from "./group_record.ts";
import {
  type CommittedOffset,
  GroupMetadata,
  type GroupState,
  type MemberMetadata,
  type MemberProtocol,
  type PendingRequest,
  sameProtocols,
} from "./_group_metadata.ts";
import { fitResponse } from "./_responses.ts";

/** A number the shell picks to match a response with its request. */
export type RequestId = number;

/** What one call produced. */
export interface CoordinatorOutput {
  /**
   * Responses now ready: for the request of this call and/or earlier pending requests (e.g.
   * JoinGroup responses completed by this event). Each response is the full response body
   * for the version that request was made with.
   */
  responses: { requestId: RequestId; response: unknown }[];
  /** Records to persist before sending `responses`. */
  records: GroupRecord[];
  /**
   * Names this output's append when `records` is not empty (null otherwise): the shell
   * reports its outcome with {@linkcode GroupCoordinator.onAppendCompleted} once the
   * records are below the high watermark, or {@linkcode GroupCoordinator.onAppendFailed}.
   * Offsets committed by this output are invisible until then.
   */
  appendId: AppendId | null;
  /**
   * A transaction's offset commits (TxnOffsetCommit), persisted with `records` under the
   * same append id but as a transactional batch of `producerId` in the group's partition.
   */
  txn?: { producerId: bigint; producerEpoch: number; records: GroupRecord[] };
}

/** Identifies the append of one {@linkcode CoordinatorOutput}'s records. */
export type AppendId = number;

/** The client identity of a JoinGroup (from the request header and the connection). */
export interface JoinClient {
  clientId: string;
  clientHost: string;
}

/** A group as DescribeGroups reports it, plus its generation; for tests and admin tools. */
export interface GroupSnapshot {
  groupId: string;
  state: GroupState;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    rebalanceTimeoutMs: number;
    sessionTimeoutMs: number;
    protocols: { name: string; metadata: Uint8Array }[];
    assignment: Uint8Array;
  }[];
  offsets: {
    topic: string;
    partition: number;
    offset: number;
    leaderEpoch: number;
    metadata: string | null;
    commitTimestampMs: number;
    expireTimestampMs: number | null;
  }[];
}

/** Kafka's GroupCoordinator.NewMemberJoinTimeoutMs (KIP-394): 5 minutes. */
export const NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000;

/** Kafka's group operations for DescribeGroups authorizedOperations: READ, DELETE, DESCRIBE. */
const GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8);
const OMITTED_AUTHORIZED_OPERATIONS = -2147483648;
const EMPTY = new Uint8Array(0);
/** Upper bound on timers fired by one call: more means a timer that re-arms in the past. */
const MAX_TIMER_FIRINGS = 1_000_000;

interface JoinResult {
  members: { memberId: string; groupInstanceId: string | null; metadata: Uint8Array }[];
  memberId: string;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  skipAssignment: boolean;
  errorCode: number;
}

interface SyncResult {
  protocolType: string | null;
  protocolName: string | null;
  assignment: Uint8Array;
  errorCode: number;
}

function joinError(memberId: string, errorCode: number): JoinResult {
  return {
    members: [],
    memberId,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leaderId: null,
    skipAssignment: false,
    errorCode,
  };
}

function syncError(errorCode: number): SyncResult {
  return { protocolType: null, protocolName: null, assignment: EMPTY, errorCode };
}

function toNumber(x: bigint): number {
  if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RangeError(`Cannot use ${x}: outside the safe integer range`);
  }
  return Number(x);
}

function utf8Length(s: string): number {
  return new TextEncoder().encode(s).byteLength;
}

/**
 * The classic group coordinator for the groups of the `__consumer_offsets` partitions this
 * node leads. Thread-unsafe and synchronous: the shell serialises calls, appends each
 * output's `records` (acks=all) and only then sends its `responses`.
 */
export class GroupCoordinator {
  readonly #config: Required<GroupCoordinatorConfig>;
  readonly #random: Random;
  readonly #log: Logger;
  readonly #groups = new Map<string, GroupMetadata>();
  #responses: { requestId: RequestId; response: unknown }[] = [];
  #records: GroupRecord[] = [];
  #nextExpiryCheckMs: number | null = null;
  #nextAppendId: AppendId = 1;
  /** The id the output being built will carry, once something needs it. */
  #outputAppendId: AppendId | null = null;
  /** Offset commits staged per append still in flight (Kafka's pendingOffsetCommits). */
  readonly #pendingAppends = new Map<
    AppendId,
    {
      group: GroupMetadata;
      commits: { topic: string; partition: number; offset: CommittedOffset }[];
      /** A transaction's commits: pending until its marker once durable. */
      txnProducerId?: bigint;
    }
  >();
  /** A transaction's offset records of the output being built (never mixed with others). */
  #txnRecords: GroupRecord[] = [];
  #txnProducer: { producerId: bigint; producerEpoch: number } | null = null;

  constructor(config: GroupCoordinatorConfig, options: { random: Random; log?: Logger }) {
    this.#config = {
      ...(DEFAULT_GROUP_CONFIG as Required<GroupCoordinatorConfig>),
      ...withoutUndefined(config),
    };
    this.#random = options.random;
    this.#log = options.log ?? getLogger(["tidelog", "group"]);
  }

  // ---------------------------------------------------------------- JoinGroup

  /** JoinGroup v0-9 (Kafka's handleJoinGroup). */
  joinGroup(
    requestId: RequestId,
    req: JoinGroupRequest,
    version: number,
    nowMs: number,
    client: JoinClient,
  ): CoordinatorOutput {
    this.#runTimers(nowMs);
    const pending: PendingRequest = { requestId, version };
    const memberId = req.memberId;
    const groupInstanceId = version >= 5 ? req.groupInstanceId : null;
    const sessionTimeoutMs = req.sessionTimeoutMs;
    // KafkaApis: v0 has no rebalance timeout; the session timeout serves as one.
    const rebalanceTimeoutMs = version === 0 ? sessionTimeoutMs : req.rebalanceTimeoutMs;
    const protocols: MemberProtocol[] = req.protocols.map((p) => ({
      name: p.name,
      metadata: p.metadata.slice(),
    }));
    const params: JoinParams = {
      pending,
      groupInstanceId,
      client,
      sessionTimeoutMs,
      rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols,
    };
    const reply = (r: JoinResult) => this.#replyJoin(pending, r);

    if (req.groupId === "") {
      reply(joinError(memberId, ErrorCode.INVALID_GROUP_ID));
    } else if (
      sessionTimeoutMs < this.#config.minSessionTimeoutMs ||
      sessionTimeoutMs > this.#config.maxSessionTimeoutMs
    ) {
      reply(joinError(memberId, ErrorCode.INVALID_SESSION_TIMEOUT));
    } else {
      const isUnknownMember = memberId === "";
      let group = this.#groups.get(req.groupId);
      if (group === undefined && !isUnknownMember) {
        reply(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      } else {
        if (group === undefined) {
          group = new GroupMetadata(req.groupId, nowMs);
          this.#groups.set(req.groupId, group);
        }
        if (!this.#acceptJoiningMember(group, memberId)) {
          const member = group.members.get(memberId);
          if (member !== undefined) this.#removeMemberOnly(group, member);
          reply(joinError("", ErrorCode.GROUP_MAX_SIZE_REACHED));
        } else if (isUnknownMember) {
          this.#doNewMemberJoinGroup(
            group,
            params,
            version >= 4 && groupInstanceId === null,
            nowMs,
          );
        } else {
          this.#doCurrentMemberJoinGroup(group, memberId, params, nowMs);
        }
        if (group.state === "PreparingRebalance") this.#tryCompleteJoin(group, nowMs);
        this.#maybeForgetUnusedGroup(group);
      }
    }
    return this.#finish(nowMs);
  }

  #acceptJoiningMember(group: GroupMetadata, memberId: string): boolean {
    const max = this.#config.maxGroupSize;
    switch (group.state) {
      case "Empty":
      case "Dead":
        return true;
      case "PreparingRebalance": {
        const m = group.members.get(memberId);
        return (m !== undefined && m.awaitingJoin !== null) || group.numAwaitingJoin() < max;
      }
      case "CompletingRebalance":
      case "Stable":
        return group.members.has(memberId) || group.members.size < max;
    }
  }

  #doNewMemberJoinGroup(
    group: GroupMetadata,
    p: JoinParams,
    requireKnownMemberId: boolean,
    nowMs: number,
  ): void {
    if (!group.supportsProtocols(p.protocolType, p.protocols.map((x) => x.name))) {
      this.#replyJoin(p.pending, joinError("", ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      return;
    }
    const newMemberId = `${p.groupInstanceId ?? p.client.clientId}-${this.#uuid()}`;
    if (p.groupInstanceId !== null) {
      this.#doStaticNewMemberJoinGroup(group, newMemberId, p.groupInstanceId, p, nowMs);
    } else if (requireKnownMemberId) {
      // KIP-394: hand out a member id and expect the member back with it.
      group.pendingMembers.set(newMemberId, nowMs + p.sessionTimeoutMs);
      this.#log.debug("Group {groupId}: new member {memberId} must rejoin with its id", {
        groupId: group.groupId,
        memberId: newMemberId,
      });
      this.#replyJoin(p.pending, joinError(newMemberId, ErrorCode.MEMBER_ID_REQUIRED));
    } else {
      this.#addMemberAndRebalance(group, newMemberId, p, nowMs);
    }
  }

  #doStaticNewMemberJoinGroup(
    group: GroupMetadata,
    newMemberId: string,
    groupInstanceId: string,
    p: JoinParams,
    nowMs: number,
  ): void {
    const oldMemberId = group.staticMembers.get(groupInstanceId);
    if (oldMemberId === undefined) {
      this.#addMemberAndRebalance(group, newMemberId, p, nowMs);
      return;
    }
    this.#log.info(
      "Group {groupId}: static member {groupInstanceId} rejoins, {oldMemberId} replaced by {memberId}",
      { groupId: group.groupId, groupInstanceId, oldMemberId, memberId: newMemberId },
    );
    const currentLeader = group.leaderId;
    const member = this.#replaceStaticMember(group, groupInstanceId, oldMemberId, newMemberId);
    member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
    this.#updateMember(member, p);
    switch (group.state) {
      case "Stable": {
        // KIP-345: no rebalance unless the group's protocol would change.
        if (group.protocolName === group.selectProtocol()) {
          this.#storeGroup(group);
          // KIP-814 (v9+): a rejoining leader learns it leads but must skip the assignment.
          // Before v9, the old leader id keeps it from running a trivial assignment that a
          // Stable group would never distribute.
          const canSkip = p.pending.version >= 9;
          const isLeader = canSkip && group.isLeader(newMemberId);
          this.#invokeJoin(member, {
            members: isLeader ? this.#currentMemberMetadata(group) : [],
            memberId: newMemberId,
            generationId: group.generationId,
            protocolType: group.protocolType,
            protocolName: group.protocolName,
            leaderId: canSkip ? group.leaderId : currentLeader,
            skipAssignment: isLeader,
            errorCode: ErrorCode.NONE,
          });
        } else {
          this.#maybePrepareRebalance(group, nowMs, "static member changed the protocol");
        }
        break;
      }
      case "CompletingRebalance":
        this.#prepareRebalance(group, nowMs, "static member rejoined during CompletingRebalance");
        break;
      case "PreparingRebalance":
        break;
      case "Empty":
      case "Dead":
        assert(false, `Static member of group ${group.groupId} in state ${group.state}`);
    }
  }

  #doCurrentMemberJoinGroup(
    group: GroupMetadata,
    memberId: string,
    p: JoinParams,
    nowMs: number,
  ): void {
    const reply = (r: JoinResult) => this.#replyJoin(p.pending, r);
    if (!group.supportsProtocols(p.protocolType, p.protocols.map((x) => x.name))) {
      reply(joinError(memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      return;
    }
    if (group.pendingMembers.has(memberId)) {
      // A pending member (MEMBER_ID_REQUIRED) is never static: Kafka asserts the same.
      this.#addMemberAndRebalance(group, memberId, { ...p, groupInstanceId: null }, nowMs);
      return;
    }
    const instanceId = p.groupInstanceId;
    const staticId = instanceId === null ? undefined : group.staticMembers.get(instanceId);
    if (staticId !== undefined && staticId !== memberId) {
      reply(joinError(memberId, ErrorCode.FENCED_INSTANCE_ID));
      return;
    }
    const member = group.members.get(memberId);
    if (member === undefined || (instanceId !== null && staticId === undefined)) {
      reply(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
      return;
    }
    switch (group.state) {
      case "PreparingRebalance":
        this.#updateMemberAndRebalance(group, member, p, nowMs, "member rejoined");
        break;
      case "CompletingRebalance":
        if (sameProtocols(member.protocols, p.protocols)) {
          // The member probably lost the JoinGroup response: send the generation again.
          reply(this.#joinResultFor(group, member.memberId));
        } else {
          this.#updateMemberAndRebalance(group, member, p, nowMs, "member metadata changed");
        }
        break;
      case "Stable":
        if (group.isLeader(memberId)) {
          // The leader may rejoin to force a rebalance (e.g. topic metadata changed).
          this.#updateMemberAndRebalance(group, member, p, nowMs, "leader rejoined");
        } else if (!sameProtocols(member.protocols, p.protocols)) {
          this.#updateMemberAndRebalance(group, member, p, nowMs, "member metadata changed");
        } else {
          reply({ ...this.#joinResultFor(group, member.memberId), members: [] });
        }
        break;
      case "Empty":
      case "Dead":
        reply(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
        break;
    }
  }

  #addMemberAndRebalance(
    group: GroupMetadata,
    memberId: string,
    p: JoinParams,
    nowMs: number,
  ): void {
    const member: MemberMetadata = {
      memberId,
      groupInstanceId: p.groupInstanceId,
      clientId: p.client.clientId,
      clientHost: p.client.clientHost,
      rebalanceTimeoutMs: p.rebalanceTimeoutMs,
      sessionTimeoutMs: p.sessionTimeoutMs,
      protocolType: p.protocolType,
      protocols: p.protocols,
      assignment: EMPTY,
      awaitingJoin: p.pending,
      awaitingSync: null,
      isNew: true,
      // A new member cannot heartbeat before its JoinGroup returns; KIP-394 times it out.
      heartbeatDeadlineMs: nowMs + NEW_MEMBER_JOIN_TIMEOUT_MS,
    };
    // Only the first generation's initial delay is extended by new members (as Kafka).
    if (group.state === "PreparingRebalance" && group.generationId === 0) {
      group.newMemberAdded = true;
    }
    group.add(member);
    this.#log.debug("Group {groupId}: member {memberId} added", {
      groupId: group.groupId,
      memberId,
    });
    this.#maybePrepareRebalance(group, nowMs, "new member joined");
  }

  #updateMemberAndRebalance(
    group: GroupMetadata,
    member: MemberMetadata,
    p: JoinParams,
    nowMs: number,
    reason: string,
  ): void {
    this.#updateMember(member, p);
    this.#maybePrepareRebalance(group, nowMs, reason);
  }

  #updateMember(member: MemberMetadata, p: JoinParams): void {
    member.protocols = p.protocols;
    member.rebalanceTimeoutMs = p.rebalanceTimeoutMs;
    member.sessionTimeoutMs = p.sessionTimeoutMs;
    if (member.awaitingJoin !== null) {
      // A second JoinGroup from the same member supersedes the first; answer the first so
      // that no request is left hanging (Kafka drops its callback).
      this.#replyJoin(
        member.awaitingJoin,
        joinError(member.memberId, ErrorCode.REBALANCE_IN_PROGRESS),
      );
    }
    member.awaitingJoin = p.pending;
  }

  #replaceStaticMember(
    group: GroupMetadata,
    groupInstanceId: string,
    oldMemberId: string,
    newMemberId: string,
  ): MemberMetadata {
    const member = group.members.get(oldMemberId);
    assert(member !== undefined, `Static member ${oldMemberId} missing from ${group.groupId}`);
    // Fence the old incarnation's outstanding requests at once.
    if (member.awaitingJoin !== null) {
      this.#replyJoin(member.awaitingJoin, joinError(oldMemberId, ErrorCode.FENCED_INSTANCE_ID));
      member.awaitingJoin = null;
    }
    if (member.awaitingSync !== null) {
      this.#replySync(member.awaitingSync, syncError(ErrorCode.FENCED_INSTANCE_ID));
      member.awaitingSync = null;
    }
    group.members.delete(oldMemberId);
    member.memberId = newMemberId;
    group.members.set(newMemberId, member);
    if (group.isLeader(oldMemberId)) group.leaderId = newMemberId;
    group.staticMembers.set(groupInstanceId, newMemberId);
    if (group.pendingSyncMembers.delete(oldMemberId)) group.pendingSyncMembers.add(newMemberId);
    return member;
  }

  #currentMemberMetadata(group: GroupMetadata): JoinResult["members"] {
    const protocol = group.protocolName;
    return [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.protocols.find((p) => p.name === protocol)?.metadata ?? EMPTY,
    }));
  }

  /** The JoinGroup result of the current generation (members only for the leader). */
  #joinResultFor(group: GroupMetadata, memberId: string): JoinResult {
    return {
      members: group.isLeader(memberId) ? this.#currentMemberMetadata(group) : [],
      memberId,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leaderId: group.leaderId,
      skipAssignment: false,
      errorCode: ErrorCode.NONE,
    };
  }

  // ---------------------------------------------------------------- rebalance

  #maybePrepareRebalance(group: GroupMetadata, nowMs: number, reason: string): void {
    const s = group.state;
    if (s === "Stable" || s === "CompletingRebalance" || s === "Empty") {
      this.#prepareRebalance(group, nowMs, reason);
    }
  }

  #prepareRebalance(group: GroupMetadata, nowMs: number, reason: string): void {
    if (group.state === "CompletingRebalance") {
      this.#resetAndPropagateAssignmentError(group, ErrorCode.REBALANCE_IN_PROGRESS, nowMs);
    }
    group.syncTimer = null;
    group.pendingSyncMembers.clear();
    const rebalanceTimeoutMs = group.rebalanceTimeoutMs();
    if (group.state === "Empty") {
      const delay = this.#config.initialRebalanceDelayMs;
      group.joinTimer = {
        kind: "initial",
        deadlineMs: nowMs + delay,
        delayMs: delay,
        remainingMs: Math.max(rebalanceTimeoutMs - delay, 0),
      };
    } else {
      group.joinTimer = { kind: "normal", deadlineMs: nowMs + rebalanceTimeoutMs };
    }
    group.transitionTo("PreparingRebalance", nowMs);
    this.#log.info(
      "Group {groupId}: preparing to rebalance in generation {generationId} ({reason})",
      { groupId: group.groupId, generationId: group.generationId, reason },
    );
    this.#tryCompleteJoin(group, nowMs);
  }

  /** DelayedJoin.tryComplete: ends the join phase once everyone has rejoined. */
  #tryCompleteJoin(group: GroupMetadata, nowMs: number): void {
    if (
      group.state === "PreparingRebalance" && group.joinTimer?.kind === "normal" &&
      group.hasAllMembersJoined()
    ) {
      this.#onCompleteJoin(group, nowMs);
    }
  }

  #onJoinTimer(group: GroupMetadata, nowMs: number): void {
    const t = group.joinTimer;
    assert(t !== null && group.state === "PreparingRebalance", "Join timer outside a join");
    if (t.kind === "initial" && group.newMemberAdded && t.remainingMs !== 0) {
      group.newMemberAdded = false;
      const delay = Math.min(this.#config.initialRebalanceDelayMs, t.remainingMs);
      group.joinTimer = {
        kind: "initial",
        deadlineMs: nowMs + delay,
        delayMs: delay,
        remainingMs: Math.max(t.remainingMs - t.delayMs, 0),
      };
      return;
    }
    this.#onCompleteJoin(group, nowMs);
  }

  /** Kafka's onCompleteJoin: the join phase ends; a new generation starts. */
  #onCompleteJoin(group: GroupMetadata, nowMs: number): void {
    group.joinTimer = null;
    for (const m of [...group.members.values()]) {
      if (m.awaitingJoin === null && m.groupInstanceId === null) {
        this.#log.info("Group {groupId}: member {memberId} did not rejoin in time", {
          groupId: group.groupId,
          memberId: m.memberId,
        });
        this.#removeMemberOnly(group, m);
      }
    }
    if (!group.maybeElectNewJoinedLeader() && group.members.size > 0) {
      // Only static members that did not rejoin are left: wait another rebalance timeout
      // for them (or for their sessions to expire). At least 1 ms, so a zero timeout
      // cannot re-arm at the same instant forever.
      this.#log.warn("Group {groupId}: no member rejoined, extending the join phase", {
        groupId: group.groupId,
      });
      group.joinTimer = {
        kind: "normal",
        deadlineMs: nowMs + Math.max(group.rebalanceTimeoutMs(), 1),
      };
      return;
    }
    group.generationId += 1;
    group.newMemberAdded = false;
    group.pendingSyncMembers.clear();
    if (group.members.size === 0) {
      group.protocolName = null;
      group.transitionTo("Empty", nowMs);
      group.subscribedTopics = group.computeSubscribedTopics();
      this.#log.info("Group {groupId}: empty in generation {generationId}", {
        groupId: group.groupId,
        generationId: group.generationId,
      });
      this.#storeGroup(group);
      return;
    }
    group.protocolName = group.selectProtocol();
    group.subscribedTopics = group.computeSubscribedTopics();
    group.transitionTo("CompletingRebalance", nowMs);
    this.#log.info(
      "Group {groupId}: generation {generationId} with {members} members, protocol {protocol}",
      {
        groupId: group.groupId,
        generationId: group.generationId,
        members: group.members.size,
        protocol: group.protocolName,
      },
    );
    for (const m of group.members.values()) {
      if (m.awaitingJoin !== null) {
        this.#invokeJoin(m, this.#joinResultFor(group, m.memberId));
      }
      m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
      m.isNew = false;
      group.pendingSyncMembers.add(m.memberId);
    }
    group.syncTimer = {
      deadlineMs: nowMs + group.rebalanceTimeoutMs(),
      generationId: group.generationId,
    };
  }

  #onSyncTimer(group: GroupMetadata, nowMs: number): void {
    const t = group.syncTimer;
    group.syncTimer = null;
    if (t === null || t.generationId !== group.generationId) return;
    if (group.state !== "CompletingRebalance" && group.state !== "Stable") return;
    if (group.pendingSyncMembers.size === 0) return;
    const late = [...group.pendingSyncMembers];
    this.#log.info("Group {groupId}: removing {members} that did not sync in time", {
      groupId: group.groupId,
      members: late,
    });
    for (const id of late) {
      const m = group.members.get(id);
      if (m !== undefined) this.#removeMemberOnly(group, m);
      else group.pendingSyncMembers.delete(id);
    }
    this.#prepareRebalance(group, nowMs, "pending sync expired");
  }

  #resetAndPropagateAssignmentError(group: GroupMetadata, errorCode: number, nowMs: number): void {
    assert(group.state === "CompletingRebalance", "Assignment reset outside CompletingRebalance");
    for (const m of group.members.values()) m.assignment = EMPTY;
    this.#propagateAssignment(group, errorCode, nowMs);
  }

  #propagateAssignment(group: GroupMetadata, errorCode: number, nowMs: number): void {
    const ok = errorCode === ErrorCode.NONE;
    for (const m of group.members.values()) {
      if (m.awaitingSync === null) continue;
      const pending = m.awaitingSync;
      m.awaitingSync = null;
      this.#replySync(pending, {
        protocolType: ok ? group.protocolType : null,
        protocolName: ok ? group.protocolName : null,
        assignment: m.assignment,
        errorCode,
      });
      // The session restarts once the member has its answer.
      m.heartbeatDeadlineMs = nowMs + m.sessionTimeoutMs;
    }
  }

  /**
   * Kafka's removeMemberAndUpdateGroup: answers the member's pending requests, removes it,
   * and rebalances (or completes a waiting join phase).
   */
  #removeMemberAndUpdateGroup(
    group: GroupMetadata,
    member: MemberMetadata,
    nowMs: number,
    reason: string,
  ): void {
    this.#removeMemberOnly(group, member);
    switch (group.state) {
      case "Stable":
      case "CompletingRebalance":
        this.#maybePrepareRebalance(group, nowMs, reason);
        break;
      case "PreparingRebalance":
        this.#tryCompleteJoin(group, nowMs);
        break;
      case "Empty":
      case "Dead":
        break;
    }
  }

  /** Removes a member, answering its pending JoinGroup/SyncGroup with UNKNOWN_MEMBER_ID. */
  #removeMemberOnly(group: GroupMetadata, member: MemberMetadata): void {
    if (member.awaitingJoin !== null) {
      this.#replyJoin(member.awaitingJoin, joinError("", ErrorCode.UNKNOWN_MEMBER_ID));
      member.awaitingJoin = null;
    }
    if (member.awaitingSync !== null) {
      this.#replySync(member.awaitingSync, syncError(ErrorCode.UNKNOWN_MEMBER_ID));
      member.awaitingSync = null;
    }
    group.remove(member.memberId);
  }

  #invokeJoin(member: MemberMetadata, result: JoinResult): void {
    const pending = member.awaitingJoin;
    if (pending === null) return;
    member.awaitingJoin = null;
    this.#replyJoin(pending, result);
  }

  // ---------------------------------------------------------------- SyncGroup

  /** SyncGroup v0-5 (Kafka's handleSyncGroup). */
  syncGroup(
    requestId: RequestId,
    req: SyncGroupRequest,
    version: number,
    nowMs: number,
  ): CoordinatorOutput {
    this.#runTimers(nowMs);
    const pending: PendingRequest = { requestId, version };
    const reply = (code: number) => this.#replySync(pending, syncError(code));
    const groupInstanceId = version >= 3 ? req.groupInstanceId : null;
    const protocolType = version >= 5 ? req.protocolType : null;
    const protocolName = version >= 5 ? req.protocolName : null;
    const group = this.#groups.get(req.groupId);
    if (version >= 5 && (protocolType === null || protocolName === null)) {
      // KafkaApis: from v5 the protocol type and name are mandatory.
      reply(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    } else if (req.groupId === "") {
      reply(ErrorCode.INVALID_GROUP_ID);
    } else if (group === undefined) {
      reply(ErrorCode.UNKNOWN_MEMBER_ID);
    } else {
      const memberError = validateMember(group, req.memberId, groupInstanceId);
      if (memberError !== ErrorCode.NONE) {
        reply(memberError);
      } else if (req.generationId !== group.generationId) {
        reply(ErrorCode.ILLEGAL_GENERATION);
      } else if (
        (protocolType !== null && protocolType !== group.protocolType) ||
        (protocolName !== null && protocolName !== group.protocolName)
      ) {
        reply(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
      } else {
        const member = group.members.get(req.memberId)!;
        switch (group.state) {
          case "Empty":
            reply(ErrorCode.UNKNOWN_MEMBER_ID);
            break;
          case "PreparingRebalance":
            reply(ErrorCode.REBALANCE_IN_PROGRESS);
            break;
          case "CompletingRebalance": {
            if (member.awaitingSync !== null) {
              this.#replySync(member.awaitingSync, syncError(ErrorCode.REBALANCE_IN_PROGRESS));
            }
            member.awaitingSync = pending;
            this.#removePendingSyncMember(group, member.memberId);
            if (group.isLeader(member.memberId)) {
              const assignments = new Map<string, Uint8Array>();
              for (const a of req.assignments) assignments.set(a.memberId, a.assignment);
              const missing = [...group.members.keys()].filter((id) => !assignments.has(id));
              if (missing.length > 0) {
                this.#log.warn(
                  "Group {groupId}: leader assigned nothing to {missing}; they get empty assignments",
                  { groupId: group.groupId, missing },
                );
              }
              for (const m of group.members.values()) {
                m.assignment = assignments.get(m.memberId)?.slice() ?? EMPTY;
              }
              group.transitionTo("Stable", nowMs);
              this.#log.info("Group {groupId}: stable in generation {generationId}", {
                groupId: group.groupId,
                generationId: group.generationId,
              });
              this.#storeGroup(group);
              this.#propagateAssignment(group, ErrorCode.NONE, nowMs);
            }
            break;
          }
          case "Stable":
            this.#removePendingSyncMember(group, member.memberId);
            this.#replySync(pending, {
              protocolType: group.protocolType,
              protocolName: group.protocolName,
              assignment: member.assignment,
              errorCode: ErrorCode.NONE,
            });
            member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
            break;
          case "Dead":
            assert(false, `Dead group ${group.groupId} still registered`);
        }
      }
    }
    return this.#finish(nowMs);
  }

  #removePendingSyncMember(group: GroupMetadata, memberId: string): void {
    group.pendingSyncMembers.delete(memberId);
    if (group.pendingSyncMembers.size === 0) group.syncTimer = null;
  }

  // ---------------------------------------------------------------- Heartbeat

  /** Heartbeat v0-4 (Kafka's handleHeartbeat). */
  heartbeat(
    requestId: RequestId,
    req: HeartbeatRequest,
    version: number,
    nowMs: number,
  ): CoordinatorOutput {
    this.#runTimers(nowMs);
    const groupInstanceId = version >= 3 ? req.groupInstanceId : null;
    let code: number = ErrorCode.NONE;
    const group = this.#groups.get(req.groupId);
    if (req.groupId === "") {
      code = ErrorCode.INVALID_GROUP_ID;
    } else if (group === undefined) {
      code = ErrorCode.UNKNOWN_MEMBER_ID;
    } else {
      code = validateMember(group, req.memberId, groupInstanceId);
      if (code === ErrorCode.NONE && req.generationId !== group.generationId) {
        code = ErrorCode.ILLEGAL_GENERATION;
      }
      if (code === ErrorCode.NONE) {
        const member = group.members.get(req.memberId)!;
        switch (group.state) {
          case "Empty":
            code = ErrorCode.UNKNOWN_MEMBER_ID;
            break;
          case "CompletingRebalance":
          case "Stable":
            member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
            break;
          case "PreparingRebalance":
            member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
            code = ErrorCode.REBALANCE_IN_PROGRESS;
            break;
          case "Dead":
            assert(false, `Dead group ${group.groupId} still registered`);
        }
      }
    }
    this.#respond(requestId, fitResponse(ApiKey.Heartbeat, version, { errorCode: code }));
    return this.#finish(nowMs);
  }

  // ---------------------------------------------------------------- LeaveGroup

  /** LeaveGroup v0-5 (Kafka's handleLeaveGroup); v0-2 leave one member, v3+ a batch. */
  leaveGroup(
    requestId: RequestId,
    req: LeaveGroupRequest,
    version: number,
    nowMs: number,
  ): CoordinatorOutput {
    this.#runTimers(nowMs);
    const leaving = version >= 3
      ? req.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId }))
      : [{ memberId: req.memberId, groupInstanceId: null as string | null }];
    let topError: number = ErrorCode.NONE;
    let results: { memberId: string; groupInstanceId: string | null; errorCode: number }[] = [];
    const group = this.#groups.get(req.groupId);
    if (req.groupId === "") {
      topError = ErrorCode.INVALID_GROUP_ID;
    } else if (group === undefined) {
      results = leaving.map((m) => ({ ...m, errorCode: ErrorCode.UNKNOWN_MEMBER_ID }));
    } else {
      for (const l of leaving) {
        let code: number = ErrorCode.NONE;
        if (l.memberId === "") {
          // Administrative removal by group.instance.id.
          const current = l.groupInstanceId === null
            ? undefined
            : group.staticMembers.get(l.groupInstanceId);
          const member = current === undefined ? undefined : group.members.get(current);
          if (member === undefined) code = ErrorCode.UNKNOWN_MEMBER_ID;
          else {this.#removeMemberAndUpdateGroup(
              group,
              member,
              nowMs,
              "member left (by instance id)",
            );}
        } else if (group.pendingMembers.has(l.memberId)) {
          group.pendingMembers.delete(l.memberId);
          if (group.state === "PreparingRebalance") this.#tryCompleteJoin(group, nowMs);
        } else {
          code = validateMember(group, l.memberId, l.groupInstanceId);
          if (code === ErrorCode.NONE) {
            this.#removeMemberAndUpdateGroup(
              group,
              group.members.get(l.memberId)!,
              nowMs,
              "member left",
            );
          }
        }
        results.push({ ...l, errorCode: code });
      }
    }
    let errorCode = topError;
    if (version <= 2 && errorCode === ErrorCode.NONE) {
      // LeaveGroupResponse v0-2: the single member's error moves to the top level.
      errorCode = results.find((r) => r.errorCode !== ErrorCode.NONE)?.errorCode ?? ErrorCode.NONE;
    }
    this.#respond(
      requestId,
      fitResponse(ApiKey.LeaveGroup, version, { errorCode, members: results }),
    );
    if (group !== undefined) this.#maybeForgetUnusedGroup(group);
    return this.#finish(nowMs);
  }

  // ---------------------------------------------------------------- offsets

  /** OffsetCommit v0-9 (Kafka's handleCommitOffsets); the shell checks topics exist. */
  offsetCommit(
    requestId: RequestId,
    req: OffsetCommitRequest,
    version: number,
    nowMs: number,
  ): CoordinatorOutput {
    this.#runTimers(nowMs);
    const generationId = version >= 1 ? req.generationIdOrMemberEpoch : -1;
    const memberId = version >= 1 ? req.memberId : "";
    const groupInstanceId = version >= 7 ? req.groupInstanceId : null;
    const allWith = (code: number) =>
      req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: code,
        })),
      }));
    let topics: ReturnType<typeof allWith>;
    let group = this.#groups.get(req.groupId);
    if (group === undefined && generationId >= 0) {
      // A commit from an old generation of a group that no longer exists.
      topics = allWith(ErrorCode.ILLEGAL_GENERATION);
    } else {
      if (group === undefined) {
        // A "simple" consumer using Kafka only for offset storage.
        group = new GroupMetadata(req.groupId, nowMs);
        this.#groups.set(req.groupId, group);
      }
      const code = this.#validateOffsetCommit(group, generationId, memberId, groupInstanceId);
      if (code !== ErrorCode.NONE) {
        topics = allWith(code);
      } else if (group.state === "CompletingRebalance") {
        // The member has the new generation but not its assignment yet.
        topics = allWith(ErrorCode.REBALANCE_IN_PROGRESS);
      } else {
        assert(group.state !== "Dead", `Dead group ${group.groupId} still registered`);
        const member = group.members.get(memberId);
        if (member !== undefined && group.state !== "Empty") {
          member.heartbeatDeadlineMs = nowMs + member.sessionTimeoutMs;
        }
        topics = this.#storeOffsets(group, req, version, nowMs);
      }
      this.#maybeForgetUnusedGroup(group);
    }
    this.#respond(requestId, fitResponse(ApiKey.OffsetCommit, version, { topics }));
    return this.#finish(nowMs);
  }

  #validateOffsetCommit(
    group: GroupMetadata,
    generationId: number,
    memberId: string,
    groupInstanceId: string | null,
  ): number {
    // A generation of -1 (admin client, manual assignment) may commit to an Empty group
    // whatever member id it gives.
    if (generationId < 0 && group.state === "Empty") return ErrorCode.NONE;
    if (generationId >= 0 || memberId !== "" || groupInstanceId !== null) {
      const code = validateMember(group, memberId, groupInstanceId);
      if (code !== ErrorCode.NONE) return code;
      return generationId === group.generationId ? ErrorCode.NONE : ErrorCode.ILLEGAL_GENERATION;
    }
    // Without a member id and generation only a group with no members takes commits.
    return group.state === "Empty" ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
  }

  #storeOffsets(
    group: GroupMetadata,
    req: OffsetCommitRequest,
    version: number,
    nowMs: number,
  ): { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[] {
    const retention = version >= 2 && version <= 4 ? req.retentionTimeMs : -1n;
    const expireTimestampMs = retention === -1n ? null : nowMs + toNumber(retention);
    return req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        const metadata = p.committedMetadata ?? "";
        if (utf8Length(metadata) > this.#config.offsetMetadataMaxBytes) {
          return {
            partitionIndex: p.partitionIndex,
            errorCode: ErrorCode.OFFSET_METADATA_TOO_LARGE,
          };
        }
        const commitTimestampMs = version === 1 && p.commitTimestamp !== -1n
          ? toNumber(p.commitTimestamp)
          : nowMs;
        const o: CommittedOffset = {
          offset: toNumber(p.committedOffset),
          leaderEpoch: version >= 6 ? p.committedLeaderEpoch : -1,
          metadata,
          commitTimestampMs,
          expireTimestampMs,
        };
        // Kafka's prepareOffsetCommit: visible once the record is durable (onAppendCompleted).
        this.#stageOffsetCommit(group, t.name, p.partitionIndex, o);
        this.#records.push({
          kind: "offset",
          groupId: group.groupId,
          topic: t.name,
          partition: p.partitionIndex,
          ...o,
        });
        return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE };
      }),
    }));
  }

  /**
   * TxnOffsetCommit v0-4 (Kafka's handleTxnCommitOffsets): offsets committed inside a
   * transaction, written as a transactional batch of the producer and shown only once the
   * transaction commits (`completeTransaction`). The shell checks the topics exist. Unlike
   * OffsetCommit, a commit without member id and generation (before v3, or from a producer
   * that does not send them) is accepted whatever the group's members.
   */
  txnOffsetCommit(
    requestId: RequestId,
    req: TxnOffsetCommitRequest,
    version: number,
    nowMs: number,
  ): CoordinatorOutput {
    this.#runTimers(nowMs);
    const generationId = version >= 3 ? req.generationId : -1;
    const memberId = version >= 3 ? req.memberId : "";
    const groupInstanceId = version >= 3 ? req.groupInstanceId : null;
    let group = this.#groups.get(req.groupId);
    if (group === undefined) {
      group = new GroupMetadata(req.groupId, nowMs);
      this.#groups.set(req.groupId, group);
    }
    let code: number = ErrorCode.NONE;
    if (groupInstanceId !== null || memberId !== "") {
      code = validateMember(group, memberId, groupInstanceId);
    }
    if (code === ErrorCode.NONE && generationId >= 0 && generationId !== group.generationId) {
      code = ErrorCode.ILLEGAL_GENERATION;
    }
    const topics = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        if (code !== ErrorCode.NONE) return { partitionIndex: p.partitionIndex, errorCode: code };
        const metadata = p.committedMetadata ?? "";
        if (utf8Length(metadata) > this.#config.offsetMetadataMaxBytes) {
          return {
            partitionIndex: p.partitionIndex,
            errorCode: ErrorCode.OFFSET_METADATA_TOO_LARGE,
          };
        }
        const o: CommittedOffset = {
          offset: toNumber(p.committedOffset),
          leaderEpoch: version >= 2 ? p.committedLeaderEpoch : -1,
          metadata,
          commitTimestampMs: nowMs,
          expireTimestampMs: null,
        };
        const appendId = this.#appendIdOfOutput();
        let pending = this.#pendingAppends.get(appendId);
        if (pending === undefined) {
          this.#pendingAppends.set(
            appendId,
            pending = { group: group!, commits: [], txnProducerId: req.producerId },
          );
        }
        pending.commits.push({ topic: t.name, partition: p.partitionIndex, offset: o });
        // Staged now (Kafka's prepareTxnOffsetCommit): a marker that comes before the
        // append is durable still finds it, and an abort drops it.
        group!.addPendingTxnOffset(req.producerId, t.name, p.partitionIndex, o, appendId, false);
        this.#txnRecords.push({
          kind: "offset",
          groupId: group!.groupId,
          topic: t.name,
          partition: p.partitionIndex,
          ...o,
        });
        return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE };
      }),
    }));
    if (this.#txnRecords.length > 0) {
      this.#txnProducer = { producerId: req.producerId, producerEpoch: req.producerEpoch };
    } else {
      // Nothing staged: a group this call created holds nothing (with commits staged, the
      // group must stay for onAppendCompleted to find it).
      this.#maybeForgetUnusedGroup(group);
    }
    this.#respond(requestId, fitResponse(ApiKey.TxnOffsetCommit, version, { topics }));
    return this.#finish(nowMs);
  }

  /**
   * A transaction marker of `producerId` is durable in offsets partition `partition` (of
   * `partitions`): the transaction's commits there become visible (commit) or are dropped.
   */
  completeTransaction(
    producerId: bigint,
    partition: number,
    partitions: number,
    commit: boolean,
  ): void {
    for (const group of this.#groups.values()) {
      if (groupPartition(group.groupId, partitions) !== partition) continue;
      if (group.completeTxn(producerId, commit)) this.#maybeForgetUnusedGroup(group);
    }
  }

  /**
   * OffsetFetch v0-9: committed offsets, -1 with metadata "" for unknown ones; `topics: null`
   * (v2+) means all the group's offsets. v8+ answers several groups.
   */
  offsetFetch(req: OffsetFetchRequest, version: number): DeepPartial<OffsetFetchResponse> {
    if (version >= 8) {
      const groups = req.groups.map((g) => ({
        groupId: g.groupId,
        errorCode: ErrorCode.NONE,
        topics: this.#fetchOffsets(g.groupId, g.topics, req.requireStable),
      }));
      return fitResponse(ApiKey.OffsetFetch, version, { groups });
    }
    const topics = this.#fetchOffsets(
      req.groupId,
      version >= 2 ? req.topics : req.topics ?? [],
      version >= 7 && req.requireStable,
    );
    return fitResponse(ApiKey.OffsetFetch, version, { errorCode: ErrorCode.NONE, topics });
  }

  #fetchOffsets(
    groupId: string,
    requested: { name: string; partitionIndexes: number[] }[] | null,
    requireStable: boolean,
  ) {
    const group = this.#groups.get(groupId);
    const wanted = requested ??
      groupTopics(
        group?.allOffsets().map((o) => ({ topic: o.topic, partition: o.partition })) ?? [],
      );
    return wanted.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((p) => {
        // Kafka's getOffsets: with requireStable (KIP-447) a commit in flight makes the
        // partition UNSTABLE_OFFSET_COMMIT (retriable) rather than answer the older offset.
        if (
          requireStable &&
          (group?.pendingOffset(t.name, p) !== undefined || group?.hasPendingTxnOffset(t.name, p))
        ) {
          return {
            partitionIndex: p,
            committedOffset: -1n,
            committedLeaderEpoch: -1,
            metadata: "",
            errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT,
          };
        }
        const o = group?.offset(t.name, p);
        return {
          partitionIndex: p,
          committedOffset: BigInt(o?.offset ?? -1),
          committedLeaderEpoch: o?.leaderEpoch ?? -1,
          metadata: o?.metadata ?? "",
          errorCode: ErrorCode.NONE,
        };
      }),
    }));
  }

  /**
   * The records of output `appendId` are durable: below the high watermark of their
   * `__consumer_offsets` partition (Kafka's onOffsetCommitAppend). Its offset commits
   * become visible, unless the offset was deleted meanwhile or a later commit is already
   * durable. Unknown ids (outputs without commits, unloaded groups) are ignored.
   */
  onAppendCompleted(appendId: AppendId): void {
    const pending = this.#pendingAppends.get(appendId);
    if (pending === undefined) return;
    this.#pendingAppends.delete(appendId);
    const { group } = pending;
    if (this.#groups.get(group.groupId) !== group) return;
    if (pending.txnProducerId !== undefined) {
      group.txnAppendDone(pending.txnProducerId, appendId, true);
      return;
    }
    for (const c of pending.commits) {
      if (group.pendingOffset(c.topic, c.partition) === undefined) continue;
      const current = group.offsetAppendId(c.topic, c.partition);
      if (current === undefined || current < appendId) {
        group.setOffset(c.topic, c.partition, c.offset, appendId);
      }
      group.clearPendingOffset(c.topic, c.partition, appendId);
    }
  }

  /**
   * The records of output `appendId` may not be durable (the append or its replication
   * failed): its offset commits are dropped (Kafka's failPendingOffsetWrite), and a group
   * the commit alone created is forgotten.
   */
  onAppendFailed(appendId: AppendId): void {
    const pending = this.#pendingAppends.get(appendId);
    if (pending === undefined) return;
    this.#pendingAppends.delete(appendId);
    const { group } = pending;
    if (this.#groups.get(group.groupId) !== group) return;
    if (pending.txnProducerId !== undefined) {
      group.txnAppendDone(pending.txnProducerId, appendId, false);
    } else {
      for (const c of pending.commits) group.clearPendingOffset(c.topic, c.partition, appendId);
    }
    this.#maybeForgetUnusedGroup(group);
  }

  /**
   * Topics were deleted: every group coordinated here forgets its offsets of them
   * (tombstones written), as Kafka's onPartitionsDeleted, so that a topic re-created with
   * the same name does not resume at the old offsets.
   */
  removeTopicOffsets(topics: ReadonlySet<string>, nowMs: number): CoordinatorOutput {
    this.#runTimers(nowMs);
    for (const group of [...this.#groups.values()]) {
      const doomed = [...group.allOffsets(), ...group.pendingPartitions()]
        .filter((o) => topics.has(o.topic));
      for (const o of doomed) {
        if (!group.deleteOffset(o.topic, o.partition)) continue;
        this.#records.push({
          kind: "offset-tombstone",
          groupId: group.groupId,
          topic: o.topic,
          partition: o.partition,
        });
      }
      if (doomed.length > 0) this.#maybeForgetUnusedGroup(group);
    }
    return this.#finish(nowMs);
  }

  // ---------------------------------------------------------------- admin

  /** DescribeGroups v0-5: unknown groups are described as "Dead" with no error. */
  describeGroups(req: DescribeGroupsRequest, version: number): DeepPartial<DescribeGroupsResponse> {
    const groups = req.groups.map((groupId) => {
      const authorizedOperations = version >= 3 && req.includeAuthorizedOperations
        ? GROUP_AUTHORIZED_OPERATIONS
        : OMITTED_AUTHORIZED_OPERATIONS;
      const group = this.#groups.get(groupId);
      if (group === undefined) {
        return {
          errorCode: ErrorCode.NONE,
          groupId,
          groupState: "Dead",
          protocolType: "",
          protocolData: "",
          members: [],
          authorizedOperations,
        };
      }
      const stable = group.state === "Stable";
      return {
        errorCode: ErrorCode.NONE,
        groupId,
        groupState: group.state,
        protocolType: group.protocolType ?? "",
        // Kafka reports the protocol (and member metadata) only for a Stable group.
        protocolData: stable ? group.protocolName ?? "" : "",
        members: [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          memberMetadata: stable
            ? m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY
            : EMPTY,
          memberAssignment: stable ? m.assignment : EMPTY,
        })),
        authorizedOperations,
      };
    });
    return fitResponse(ApiKey.DescribeGroups, version, { groups });
  }

  /** ListGroups v0-5; states (v4+) and types (v5+; all groups here are "classic") filter. */
  listGroups(req: ListGroupsRequest, version: number): DeepPartial<ListGroupsResponse> {
    const states = new Set((version >= 4 ? req.statesFilter : []).map((s) => s.toLowerCase()));
    const types = new Set((version >= 5 ? req.typesFilter : []).map((s) => s.toLowerCase()));
    const groups = [...this.#groups.values()]
      .filter((g) => states.size === 0 || states.has(g.state.toLowerCase()))
      .filter(() => types.size === 0 || types.has("classic"))
      .sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0))
      .map((g) => ({
        groupId: g.groupId,
        protocolType: g.protocolType ?? "",
        groupState: g.state,
        groupType: "classic",
      }));
    return fitResponse(ApiKey.ListGroups, version, { errorCode: ErrorCode.NONE, groups });
  }

  /** DeleteGroups v0-2: only Empty groups; tombstones for the group and all its offsets. */
  deleteGroups(
    requestId: RequestId,
    req: DeleteGroupsRequest,
    version: number,
    nowMs: number,
  ): CoordinatorOutput {
    this.#runTimers(nowMs);
    const results = [...new Set(req.groupsNames)].map((groupId) => {
      const group = this.#groups.get(groupId);
      let errorCode: number = ErrorCode.NONE;
      if (group === undefined) {
        errorCode = ErrorCode.GROUP_ID_NOT_FOUND;
      } else if (group.state !== "Empty") {
        errorCode = ErrorCode.NON_EMPTY_GROUP;
      } else {
        // Commits in flight too: their records precede the tombstones in the log.
        const doomed = new Map<string, { topic: string; partition: number }>();
        for (const o of [...group.allOffsets(), ...group.pendingPartitions()]) {
          doomed.set(`${o.partition}\u0000${o.topic}`, o);
        }
        for (const o of doomed.values()) {
          this.#records.push({
            kind: "offset-tombstone",
            groupId,
            topic: o.topic,
            partition: o.partition,
          });
        }
        this.#records.push({ kind: "group-tombstone", groupId });
        group.transitionTo("Dead", nowMs);
        this.#groups.delete(groupId);
        this.#log.info("Group {groupId}: deleted", { groupId });
      }
      return { groupId, errorCode };
    });
    this.#respond(requestId, fitResponse(ApiKey.DeleteGroups, version, { results }));
    return this.#finish(nowMs);
  }

  /**
   * OffsetDelete v0: removes offsets of an Empty group, or of topics a consumer-protocol group
   * does not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise). The shell checks topics exist.
   */
  offsetDelete(
    requestId: RequestId,
    req: OffsetDeleteRequest,
    version: number,
    nowMs: number,
  ): CoordinatorOutput {
    this.#runTimers(nowMs);
    const group = this.#groups.get(req.groupId);
    let errorCode: number = ErrorCode.NONE;
    let topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[] =
      [];
    if (req.groupId === "") {
      errorCode = ErrorCode.INVALID_GROUP_ID;
    } else if (group === undefined) {
      errorCode = ErrorCode.GROUP_ID_NOT_FOUND;
    } else if (group.state !== "Empty" && group.protocolType !== "consumer") {
      errorCode = ErrorCode.NON_EMPTY_GROUP;
    } else {
      const subscribed = (topic: string) =>
        group.state !== "Empty" &&
        (group.subscribedTopics === null || group.subscribedTopics.has(topic));
      topics = req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          if (subscribed(t.name)) {
            return {
              partitionIndex: p.partitionIndex,
              errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC,
            };
          }
          if (group.deleteOffset(t.name, p.partitionIndex)) {
            this.#records.push({
              kind: "offset-tombstone",
              groupId: group.groupId,
              topic: t.name,
              partition: p.partitionIndex,
            });
          }
          return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE };
        }),
      }));
      this.#maybeRemoveDeadGroup(group, nowMs);
    }
    this.#respond(requestId, fitResponse(ApiKey.OffsetDelete, version, { errorCode, topics }));
    return this.#finish(nowMs);
  }

  // ---------------------------------------------------------------- timers

  /**
   * Fires every timer due at `nowMs`: session expiries, join-phase ends (rebalance timeout,
   * initial delay), pending-sync expiry, pending-member expiry, and offset expiry.
   */
  tick(nowMs: number): CoordinatorOutput {
    this.#runTimers(nowMs);
    return this.#finish(nowMs);
  }

  /** When {@linkcode GroupCoordinator.tick} next has work, or null if no timer is armed. */
  nextDeadlineMs(): number | null {
    return this.#nextTimer()?.deadlineMs ?? null;
  }

  #nextTimer(): Timer | null {
    let best: Timer | null = null;
    const consider = (t: Timer) => {
      if (best === null || t.deadlineMs < best.deadlineMs) best = t;
    };
    if (this.#nextExpiryCheckMs !== null) {
      consider({ kind: "expiry", deadlineMs: this.#nextExpiryCheckMs });
    }
    for (const group of this.#groups.values()) {
      if (group.joinTimer !== null) {
        consider({ kind: "join", group, deadlineMs: group.joinTimer.deadlineMs });
      }
      if (group.syncTimer !== null) {
        consider({ kind: "sync", group, deadlineMs: group.syncTimer.deadlineMs });
      }
      for (const [memberId, deadlineMs] of group.pendingMembers) {
        consider({ kind: "pending", group, memberId, deadlineMs });
      }
      for (const m of group.members.values()) {
        if (m.heartbeatDeadlineMs !== null) {
          consider({ kind: "session", group, member: m, deadlineMs: m.heartbeatDeadlineMs });
        }
      }
    }
    return best;
  }

  #runTimers(nowMs: number): void {
    if (this.#nextExpiryCheckMs === null && this.#groups.size > 0) {
      this.#nextExpiryCheckMs = nowMs + this.#config.offsetsRetentionCheckIntervalMs;
    }
    for (let fired = 0;; fired++) {
      assert(fired < MAX_TIMER_FIRINGS, "Group timers keep re-arming in the past");
      const t = this.#nextTimer();
      if (t === null || t.deadlineMs > nowMs) return;
      switch (t.kind) {
        case "expiry":
          this.#nextExpiryCheckMs = this.#groups.size > 0
            ? nowMs + this.#config.offsetsRetentionCheckIntervalMs
            : null;
          this.#expireOffsets(nowMs);
          break;
        case "join":
          this.#onJoinTimer(t.group, nowMs);
          break;
        case "sync":
          this.#onSyncTimer(t.group, nowMs);
          break;
        case "pending":
          t.group.pendingMembers.delete(t.memberId);
          if (t.group.state === "PreparingRebalance") this.#tryCompleteJoin(t.group, nowMs);
          this.#maybeForgetUnusedGroup(t.group);
          break;
        case "session":
          this.#onSessionTimer(t.group, t.member, nowMs);
          break;
      }
    }
  }

  #onSessionTimer(group: GroupMetadata, member: MemberMetadata, nowMs: number): void {
    // Kafka's hasSatisfiedHeartbeat: a known member waiting for a rebalance to answer it is
    // alive; its session restarts when the answer goes out.
    if (!member.isNew && (member.awaitingJoin !== null || member.awaitingSync !== null)) {
      member.heartbeatDeadlineMs = null;
      return;
    }
    this.#log.info("Group {groupId}: member {memberId} session expired", {
      groupId: group.groupId,
      memberId: member.memberId,
    });
    this.#removeMemberAndUpdateGroup(group, member, nowMs, "session expired");
  }

  /** Kafka's cleanupGroupMetadata with removeExpiredOffsets (KIP-211 semantics). */
  #expireOffsets(nowMs: number): void {
    const retention = this.#config.offsetsRetentionMs;
    for (const group of [...this.#groups.values()]) {
      let base: ((o: CommittedOffset) => number) | null = null;
      let keep = new Set<string>();
      if (group.protocolType !== null && group.state === "Empty") {
        base = () => group.stateTimestampMs;
      } else if (
        group.protocolType === "consumer" && group.subscribedTopics !== null &&
        group.state === "Stable"
      ) {
        base = (o) => o.commitTimestampMs;
        keep = group.subscribedTopics;
      } else if (group.protocolType === null) {
        base = (o) => o.commitTimestampMs;
      }
      if (base !== null) {
        for (const { topic, partition, offset } of group.allOffsets()) {
          // Kafka: an offset with a commit in flight does not expire.
          if (keep.has(topic) || group.pendingOffset(topic, partition) !== undefined) continue;
          const expired = offset.expireTimestampMs !== null
            ? nowMs >= offset.expireTimestampMs
            : nowMs - base(offset) >= retention;
          if (expired) {
            group.deleteOffset(topic, partition);
            this.#records.push({
              kind: "offset-tombstone",
              groupId: group.groupId,
              topic,
              partition,
            });
          }
        }
      }
      this.#maybeRemoveDeadGroup(group, nowMs);
    }
  }

  /** An Empty group without offsets dies (Kafka writes its tombstone if it had generations). */
  #maybeRemoveDeadGroup(group: GroupMetadata, nowMs: number): void {
    if (group.state !== "Empty" || group.hasOffsets()) return;
    group.transitionTo("Dead", nowMs);
    this.#groups.delete(group.groupId);
    if (group.generationId > 0) {
      this.#records.push({ kind: "group-tombstone", groupId: group.groupId });
    }
    this.#log.info("Group {groupId}: removed (empty, no offsets)", { groupId: group.groupId });
  }

  /**
   * Forgets a group that a failed request created and that holds nothing: no members,
   * pending members, offsets or generations (Kafka keeps it until the next cleanup).
   */
  #maybeForgetUnusedGroup(group: GroupMetadata): void {
    if (
      group.state === "Empty" && group.generationId === 0 && group.members.size === 0 &&
      group.pendingMembers.size === 0 && !group.hasOffsets() &&
      this.#groups.get(group.groupId) === group
    ) {
      this.#groups.delete(group.groupId);
    }
  }

  // ---------------------------------------------------------------- load/unload

  /**
   * Rebuilds the groups of one `__consumer_offsets` partition from its records, in log order
   * (later records win; tombstones delete). A group with members comes back Stable with its
   * persisted generation, an empty one Empty; offsets without a group record make an Empty
   * group. Member sessions restart at `nowMs`. Groups of the same ids are replaced.
   */
  load(
    records: GroupRecord[],
    nowMs: number,
    pendingTxns: ReadonlyMap<bigint, readonly GroupRecord[]> = new Map(),
  ): void {
    const metas = new Map<string, Extract<GroupRecord, { kind: "group" }> | null>();
    const offsets = new Map<string, Map<string, Extract<GroupRecord, { kind: "offset" }> | null>>();
    for (const r of records) {
      switch (r.kind) {
        case "group":
          metas.set(r.groupId, r);
          break;
        case "group-tombstone":
          metas.set(r.groupId, null);
          break;
        case "offset":
        case "offset-tombstone": {
          let g = offsets.get(r.groupId);
          if (g === undefined) offsets.set(r.groupId, g = new Map());
          g.set(`${r.partition}\u0000${r.topic}`, r.kind === "offset" ? r : null);
          break;
        }
      }
    }
    const ids = new Set([...metas.keys(), ...offsets.keys()]);
    for (const groupId of ids) {
      const meta = metas.get(groupId) ?? null;
      const groupOffsets = [...(offsets.get(groupId)?.values() ?? [])].filter((o) => o !== null);
      if (meta === null && groupOffsets.length === 0) continue;
      const group = new GroupMetadata(groupId, nowMs);
      if (meta !== null) {
        group.generationId = meta.generationId;
        group.protocolType = meta.protocolType;
        group.protocolName = meta.protocolName;
        group.leaderId = meta.leaderId;
        for (const m of meta.members) {
          const member: MemberMetadata = {
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            clientId: m.clientId,
            clientHost: m.clientHost,
            rebalanceTimeoutMs: m.rebalanceTimeoutMs,
            sessionTimeoutMs: m.sessionTimeoutMs,
            protocolType: meta.protocolType ?? "",
            protocols: meta.protocolName === null
              ? []
              : [{ name: meta.protocolName, metadata: m.subscription.slice() }],
            assignment: m.assignment.slice(),
            awaitingJoin: null,
            awaitingSync: null,
            isNew: false,
            heartbeatDeadlineMs: nowMs + m.sessionTimeoutMs,
          };
          group.members.set(m.memberId, member);
          if (m.groupInstanceId !== null) group.staticMembers.set(m.groupInstanceId, m.memberId);
        }
        group.state = meta.members.length > 0 ? "Stable" : "Empty";
        group.stateTimestampMs = meta.stateTimestampMs;
        group.subscribedTopics = group.computeSubscribedTopics();
      }
      for (const o of groupOffsets) {
        group.setOffset(o.topic, o.partition, {
          offset: o.offset,
          leaderEpoch: o.leaderEpoch,
          metadata: o.metadata,
          commitTimestampMs: o.commitTimestampMs,
          expireTimestampMs: o.expireTimestampMs,
        });
      }
      const existing = this.#groups.get(groupId);
      if (existing !== undefined) {
        this.#log.warn("Group {groupId}: replaced by a load while still in memory", { groupId });
        this.#groups.delete(groupId);
      }
      this.#groups.set(groupId, group);
      if (group.members.size > this.#config.maxGroupSize) {
        // Kafka's onGroupLoaded: an oversized group (group.max.size was lowered) rebalances,
        // giving its members a chance to commit; the excess is refused at JoinGroup.
        this.#prepareRebalance(group, nowMs, "loaded group is over capacity");
      }
    }
    // Transactional commits whose marker is not in the log yet wait for it (Kafka keeps them
    // as pendingTransactionalOffsetCommits); a group holding only those exists too.
    for (const [producerId, list] of pendingTxns) {
      for (const r of list) {
        if (r.kind !== "offset") continue;
        let group = this.#groups.get(r.groupId);
        if (group === undefined) {
          group = new GroupMetadata(r.groupId, nowMs);
          this.#groups.set(r.groupId, group);
        }
        group.addPendingTxnOffset(
          producerId,
          r.topic,
          r.partition,
          {
            offset: r.offset,
            leaderEpoch: r.leaderEpoch,
            metadata: r.metadata,
            commitTimestampMs: r.commitTimestampMs,
            expireTimestampMs: r.expireTimestampMs,
          },
          0,
          true,
        );
      }
    }
    this.#log.info("Loaded {groups} groups from {records} records", {
      groups: ids.size,
      records: records.length,
    });
    if (this.#nextExpiryCheckMs === null && this.#groups.size > 0) {
      this.#nextExpiryCheckMs = nowMs + this.#config.offsetsRetentionCheckIntervalMs;
    }
  }

  /**
   * Forgets every group whose `groupPartition(groupId, partitions)` is `partition` (this node
   * lost that partition's leadership). Their pending requests get NOT_COORDINATOR.
   */
  unload(partition: number, partitions: number): CoordinatorOutput {
    for (const group of [...this.#groups.values()]) {
      if (groupPartition(group.groupId, partitions) !== partition) continue;
      for (const m of group.members.values()) {
        if (m.awaitingJoin !== null) {
          this.#replyJoin(m.awaitingJoin, joinError(m.memberId, ErrorCode.NOT_COORDINATOR));
          m.awaitingJoin = null;
        }
        if (m.awaitingSync !== null) {
          this.#replySync(m.awaitingSync, syncError(ErrorCode.NOT_COORDINATOR));
          m.awaitingSync = null;
        }
      }
      group.state = "Dead";
      this.#groups.delete(group.groupId);
    }
    for (const [id, pending] of this.#pendingAppends) {
      if (this.#groups.get(pending.group.groupId) !== pending.group) {
        this.#pendingAppends.delete(id);
      }
    }
    if (this.#groups.size === 0) this.#nextExpiryCheckMs = null;
    return this.#flush();
  }

  // ---------------------------------------------------------------- introspection

  /** A copy of one group's state, or undefined if the group does not exist. */
  group(groupId: string): GroupSnapshot | undefined {
    const g = this.#groups.get(groupId);
    if (g === undefined) return undefined;
    return {
      groupId: g.groupId,
      state: g.state,
      generationId: g.generationId,
      protocolType: g.protocolType,
      protocolName: g.protocolName,
      leaderId: g.leaderId,
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        sessionTimeoutMs: m.sessionTimeoutMs,
        protocols: m.protocols.map((p) => ({ name: p.name, metadata: p.metadata.slice() })),
        assignment: m.assignment.slice(),
      })),
      offsets: g.allOffsets().map(({ topic, partition, offset }) => ({
        topic,
        partition,
        ...offset,
      })),
    };
  }

  /** The ids of every group in memory, sorted. */
  groupIds(): string[] {
    return [...this.#groups.keys()].sort();
  }

  // ---------------------------------------------------------------- output

  #storeGroup(group: GroupMetadata): void {
    const protocol = group.protocolName;
    this.#records.push({
      kind: "group",
      groupId: group.groupId,
      protocolType: group.protocolType,
      protocolName: protocol,
      generationId: group.generationId,
      leaderId: group.leaderId,
      stateTimestampMs: group.stateTimestampMs,
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        sessionTimeoutMs: m.sessionTimeoutMs,
        subscription: (m.protocols.find((p) => p.name === protocol)?.metadata ?? EMPTY).slice(),
        assignment: m.assignment.slice(),
      })),
    });
  }

  #replyJoin(pending: PendingRequest, r: JoinResult): void {
    this.#respond(
      pending.requestId,
      fitResponse(ApiKey.JoinGroup, pending.version, {
        errorCode: r.errorCode,
        generationId: r.generationId,
        protocolType: r.protocolType,
        protocolName: r.protocolName,
        leader: r.leaderId ?? "",
        skipAssignment: r.skipAssignment,
        memberId: r.memberId,
        members: r.members,
      }),
    );
  }

  #replySync(pending: PendingRequest, r: SyncResult): void {
    this.#respond(
      pending.requestId,
      fitResponse(ApiKey.SyncGroup, pending.version, {
        errorCode: r.errorCode,
        protocolType: r.protocolType,
        protocolName: r.protocolName,
        assignment: r.assignment,
      }),
    );
  }

  #respond(requestId: RequestId, response: unknown): void {
    this.#responses.push({ requestId, response });
  }

  /** Runs timers that the call made due (e.g. a zero initial delay), then hands out. */
  #finish(nowMs: number): CoordinatorOutput {
    this.#runTimers(nowMs);
    return this.#flush();
  }

  #flush(): CoordinatorOutput {
    const appendId = this.#records.length > 0 || this.#txnRecords.length > 0
      ? this.#appendIdOfOutput()
      : null;
    const out: CoordinatorOutput = { responses: this.#responses, records: this.#records, appendId };
    if (this.#txnProducer !== null && this.#txnRecords.length > 0) {
      out.txn = { ...this.#txnProducer, records: this.#txnRecords };
    }
    this.#responses = [];
    this.#records = [];
    this.#txnRecords = [];
    this.#outputAppendId = null;
    this.#txnProducer = null;
    return out;
  }

  #appendIdOfOutput(): AppendId {
    this.#outputAppendId ??= this.#nextAppendId++;
    return this.#outputAppendId;
  }

  #stageOffsetCommit(group: GroupMetadata, topic: string, partition: number, o: CommittedOffset) {
    const appendId = this.#appendIdOfOutput();
    group.setPendingOffset(topic, partition, { appendId, offset: o });
    let pending = this.#pendingAppends.get(appendId);
    if (pending === undefined) this.#pendingAppends.set(appendId, pending = { group, commits: [] });
    assert(pending.group === group, `One output commits offsets of one group only`);
    pending.commits.push({ topic, partition, offset: o });
  }

  #uuid(): string {
    const hex = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
    const a = hex(this.#random.nextU32());
    const b = hex((this.#random.nextU32() & 0xffff0fff) | 0x00004000);
    const c = hex((this.#random.nextU32() & 0x3fffffff) | 0x80000000);
    const d = hex(this.#random.nextU32());
    return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`;
  }
}

interface JoinParams {
  pending: PendingRequest;
  groupInstanceId: string | null;
  client: JoinClient;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: MemberProtocol[];
}

type Timer =
  | { kind: "expiry"; deadlineMs: number }
  | { kind: "join"; group: GroupMetadata; deadlineMs: number }
  | { kind: "sync"; group: GroupMetadata; deadlineMs: number }
  | { kind: "pending"; group: GroupMetadata; memberId: string; deadlineMs: number }
  | { kind: "session"; group: GroupMetadata; member: MemberMetadata; deadlineMs: number };

/**
 * Kafka's GroupMetadata.validateMember: a static member must be the instance's current
 * member id (else FENCED_INSTANCE_ID); any member must exist (else UNKNOWN_MEMBER_ID).
 */
function validateMember(
  group: GroupMetadata,
  memberId: string,
  groupInstanceId: string | null,
): number {
  if (groupInstanceId !== null) {
    const current = group.staticMembers.get(groupInstanceId);
    if (current === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (current !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
    return ErrorCode.NONE;
  }
  return group.members.has(memberId) ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
}

/** Groups (topic, partition) pairs by topic, keeping their order. */
function groupTopics(
  pairs: { topic: string; partition: number }[],
): { name: string; partitionIndexes: number[] }[] {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of pairs) {
    let ps = byTopic.get(topic);
    if (ps === undefined) byTopic.set(topic, ps = []);
    ps.push(partition);
  }
  return [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes }));
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
