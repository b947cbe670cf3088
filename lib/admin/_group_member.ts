/**
 * One member of a consumer group on the classic protocol (protocol type "consumer",
 * assignor "range"), for `tidelog consume --group`: FindCoordinator v4, JoinGroup v7
 * (with the KIP-394 member-id round trip), SyncGroup v5 (as leader, a range assignment
 * of every member's subscribed topics), Heartbeat v4 every 3 s, OffsetFetch v8,
 * OffsetCommit v8 and LeaveGroup v5. Other consumers (Java, kcat) may share the group:
 * any of them may be the leader, and they all speak the same embedded consumer protocol.
 *
 * Driver contract:
 * 1. `join()` until it resolves with this member's partitions;
 * 2. consume, checking `needsRejoin` between fetches (a heartbeat found a rebalance);
 *    commit with `commit()`;
 * 3. on `needsRejoin`: commit, then `join()` again;
 * 4. at the end: `commit()`, then `leave()` (the group is Empty once every member left).
 */
import {
  ApiKey,
  decodeData,
  encodeData,
  ErrorCode,
  type JoinGroupResponseMember,
} from "../protocol/mod.ts";
import type { KafkaConnection } from "../client/mod.ts";
import { type AdminClient, isRetriable, KafkaCallError } from "./admin_client.ts";

/** Kafka requires at least group.min.session.timeout.ms (6 s by default). */
const SESSION_TIMEOUT_MS = 10_000;
/** How long the coordinator waits for every member to rejoin. */
const REBALANCE_TIMEOUT_MS = 30_000;
/** A third of the session, as Kafka's default heartbeat.interval.ms is of its default session. */
const HEARTBEAT_INTERVAL_MS = 3000;
/** How long `join()` keeps trying through coordinator moves and rebalances. */
const JOIN_DEADLINE_MS = 60_000;
const PROTOCOL = "range";
/** Version of the embedded ConsumerProtocolSubscription/Assignment we write. */
const CONSUMER_PROTOCOL_VERSION = 3;

/** A rebalance started, or the member id changed: join again at once. */
class RejoinNeeded extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "RejoinNeeded";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The consumer protocol's int16 version prefix, then the data of that version. */
function withVersion(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + body.length);
  new DataView(out.buffer).setInt16(0, CONSUMER_PROTOCOL_VERSION);
  out.set(body, 2);
  return out;
}

function readVersioned<K extends "ConsumerProtocolSubscription" | "ConsumerProtocolAssignment">(
  name: K,
  bytes: Uint8Array,
) {
  if (bytes.length < 2) return null;
  const version = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt16(0);
  try {
    // A newer version only appends fields: read what we know (trailing bytes then fail).
    return decodeData(
      name,
      Math.min(Math.max(version, 0), CONSUMER_PROTOCOL_VERSION),
      bytes.subarray(2),
    );
  } catch {
    return null;
  }
}

/** A member's assignment from DescribeGroups or SyncGroup, topic → partitions. */
export function decodeAssignment(bytes: Uint8Array): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const a = readVersioned("ConsumerProtocolAssignment", bytes);
  for (const tp of a?.assignedPartitions ?? []) {
    out.set(tp.topic, [...(out.get(tp.topic) ?? []), ...tp.partitions].sort((x, y) => x - y));
  }
  return out;
}

function encodeAssignment(assignment: Map<string, number[]>): Uint8Array {
  return withVersion(encodeData("ConsumerProtocolAssignment", CONSUMER_PROTOCOL_VERSION, {
    assignedPartitions: [...assignment].map(([topic, partitions]) => ({ topic, partitions })),
    userData: null,
  }));
}

/** See the module doc. */
export class GroupMember {
  readonly #client: AdminClient;
  readonly #group: string;
  readonly #topics: readonly string[];
  #memberId = "";
  #generation = -1;
  #conn: KafkaConnection | null = null;
  #rejoin = false;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: Promise<void> | null = null;
  /** Bumped when heartbeats stop: a beat of an older series does not schedule the next. */
  #heartbeatSeries = 0;
  #stopped = false;

  constructor(client: AdminClient, group: string, topics: readonly string[]) {
    this.#client = client;
    this.#group = group;
    this.#topics = topics;
  }

  /** A heartbeat found a rebalance (or lost the membership): commit and `join()` again. */
  get needsRejoin(): boolean {
    return this.#rejoin;
  }

  /** Joins the group (again) and resolves with this member's partitions, topic → partitions. */
  async join(): Promise<Map<string, number[]>> {
    await this.#stopHeartbeats();
    const deadline = Date.now() + JOIN_DEADLINE_MS;
    for (;;) {
      try {
        const assignment = await this.#joinOnce();
        this.#rejoin = false;
        this.#startHeartbeats();
        return assignment;
      } catch (err) {
        const again = err instanceof RejoinNeeded || isRetriable(err);
        if (!again || this.#stopped || Date.now() > deadline) throw err;
        if (!(err instanceof RejoinNeeded)) await sleep(200);
      }
    }
  }

  async #joinOnce(): Promise<Map<string, number[]>> {
    const { conn } = await this.#client.coordinator(this.#group);
    this.#conn = conn;
    const what = `group ${this.#group}`;
    const res = await this.#client.request(conn, ApiKey.JoinGroup, 7, {
      groupId: this.#group,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS,
      memberId: this.#memberId,
      groupInstanceId: null,
      protocolType: "consumer",
      protocols: [{
        name: PROTOCOL,
        metadata: withVersion(
          encodeData("ConsumerProtocolSubscription", CONSUMER_PROTOCOL_VERSION, {
            topics: [...this.#topics],
            userData: null,
            ownedPartitions: [],
            generationId: -1,
            rackId: null,
          }),
        ),
      }],
    }, REBALANCE_TIMEOUT_MS + 10_000);
    switch (res.errorCode) {
      case ErrorCode.NONE:
        break;
      case ErrorCode.MEMBER_ID_REQUIRED: // KIP-394: join again with the id given
        this.#memberId = res.memberId;
        throw new RejoinNeeded("member id assigned");
      case ErrorCode.UNKNOWN_MEMBER_ID:
        this.#memberId = "";
        throw new RejoinNeeded("unknown member id");
      case ErrorCode.REBALANCE_IN_PROGRESS:
        throw new RejoinNeeded("rebalance in progress");
      default:
        throw new KafkaCallError(what, res.errorCode);
    }
    this.#memberId = res.memberId;
    this.#generation = res.generationId;
    const assignments = res.leader === res.memberId ? await this.#assign(res.members) : [];
    const sync = await this.#client.request(conn, ApiKey.SyncGroup, 5, {
      groupId: this.#group,
      generationId: this.#generation,
      memberId: this.#memberId,
      groupInstanceId: null,
      protocolType: "consumer",
      protocolName: res.protocolName ?? PROTOCOL,
      assignments,
    }, REBALANCE_TIMEOUT_MS + 10_000);
    switch (sync.errorCode) {
      case ErrorCode.NONE:
        return decodeAssignment(sync.assignment);
      case ErrorCode.UNKNOWN_MEMBER_ID:
        this.#memberId = "";
        throw new RejoinNeeded("unknown member id");
      case ErrorCode.REBALANCE_IN_PROGRESS:
      case ErrorCode.ILLEGAL_GENERATION:
        throw new RejoinNeeded("rebalance in progress");
      default:
        throw new KafkaCallError(what, sync.errorCode);
    }
  }

  /**
   * The leader's assignment: for each subscribed topic, its partitions in contiguous
   * ranges over the members subscribed to it (sorted by member id), as Kafka's
   * RangeAssignor.
   */
  async #assign(members: JoinGroupResponseMember[]) {
    const subscriptions = members.map((m) => ({
      memberId: m.memberId,
      topics: readVersioned("ConsumerProtocolSubscription", m.metadata)?.topics ?? [],
    }));
    const topics = [...new Set(subscriptions.flatMap((s) => s.topics))].sort();
    const md = topics.length === 0 ? null : await this.#client.metadata(topics);
    const plan = new Map<string, Map<string, number[]>>(
      members.map((m) => [m.memberId, new Map()]),
    );
    for (const topic of topics) {
      const partitions = (md?.topics.find((t) => t.name === topic)?.partitions ?? [])
        .map((p) => p.partitionIndex).sort((a, b) => a - b);
      const subscribed = subscriptions.filter((s) => s.topics.includes(topic))
        .map((s) => s.memberId).sort();
      const per = Math.floor(partitions.length / subscribed.length);
      const extra = partitions.length % subscribed.length;
      let next = 0;
      subscribed.forEach((memberId, i) => {
        const count = per + (i < extra ? 1 : 0);
        if (count > 0) plan.get(memberId)!.set(topic, partitions.slice(next, next + count));
        next += count;
      });
    }
    return [...plan].map(([memberId, assignment]) => ({
      memberId,
      assignment: encodeAssignment(assignment),
    }));
  }

  #startHeartbeats(): void {
    const beat = async () => {
      const conn = this.#conn;
      if (this.#stopped || this.#rejoin || conn === null) return;
      try {
        const res = await this.#client.request(conn, ApiKey.Heartbeat, 4, {
          groupId: this.#group,
          generationId: this.#generation,
          memberId: this.#memberId,
          groupInstanceId: null,
        }, SESSION_TIMEOUT_MS);
        if (res.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.#memberId = "";
        // REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, a moved coordinator: join again.
        if (res.errorCode !== ErrorCode.NONE) this.#rejoin = true;
      } catch {
        // The coordinator is gone or slow: join again (which finds the new one).
        this.#rejoin = true;
      }
    };
    const series = ++this.#heartbeatSeries;
    const schedule = () => {
      if (series !== this.#heartbeatSeries || this.#stopped || this.#rejoin) return;
      this.#heartbeatTimer = setTimeout(() => {
        this.#heartbeat = beat().finally(() => {
          this.#heartbeat = null;
          schedule();
        });
      }, HEARTBEAT_INTERVAL_MS);
    };
    schedule();
  }

  async #stopHeartbeats(): Promise<void> {
    this.#heartbeatSeries++;
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    if (this.#heartbeat !== null) await this.#heartbeat;
  }

  /** The group's committed offsets of `topic`'s `partitions` (absent: none committed). */
  async committed(topic: string, partitions: readonly number[]): Promise<Map<number, number>> {
    const res = await this.#client.retrying(async () => {
      const { conn } = await this.#client.coordinator(this.#group);
      const r = await this.#client.request(conn, ApiKey.OffsetFetch, 8, {
        groups: [{
          groupId: this.#group,
          memberId: null,
          memberEpoch: -1,
          topics: [{ name: topic, partitionIndexes: [...partitions] }],
        }],
        requireStable: false,
      });
      const g = r.groups[0];
      if (g !== undefined && g.errorCode !== ErrorCode.NONE) {
        throw new KafkaCallError(`group ${this.#group}`, g.errorCode);
      }
      return g;
    });
    const out = new Map<number, number>();
    for (const t of res?.topics ?? []) {
      if (t.name !== topic) continue;
      for (const p of t.partitions) {
        if (p.errorCode !== ErrorCode.NONE) {
          throw new KafkaCallError(`${topic}-${p.partitionIndex}`, p.errorCode);
        }
        if (p.committedOffset >= 0n) out.set(p.partitionIndex, Number(p.committedOffset));
      }
    }
    return out;
  }

  /**
   * Commits `offsets` (topic → partition → next offset to read) as this member's
   * generation. A rebalance since the join fails it with REBALANCE_IN_PROGRESS (or
   * ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID) and sets `needsRejoin`.
   */
  async commit(offsets: ReadonlyMap<string, ReadonlyMap<number, number>>): Promise<void> {
    const conn = this.#conn;
    if (conn === null || offsets.size === 0) return;
    const res = await this.#client.request(conn, ApiKey.OffsetCommit, 8, {
      groupId: this.#group,
      generationIdOrMemberEpoch: this.#generation,
      memberId: this.#memberId,
      groupInstanceId: null,
      topics: [...offsets].map(([name, partitions]) => ({
        name,
        partitions: [...partitions].map(([partitionIndex, offset]) => ({
          partitionIndex,
          committedOffset: BigInt(offset),
          committedLeaderEpoch: -1,
          committedMetadata: "",
        })),
      })),
    });
    for (const t of res.topics) {
      for (const p of t.partitions) {
        if (p.errorCode === ErrorCode.NONE) continue;
        if (
          p.errorCode === ErrorCode.REBALANCE_IN_PROGRESS ||
          p.errorCode === ErrorCode.ILLEGAL_GENERATION ||
          p.errorCode === ErrorCode.UNKNOWN_MEMBER_ID
        ) {
          this.#rejoin = true;
        }
        throw new KafkaCallError(`commit of ${t.name}-${p.partitionIndex}`, p.errorCode);
      }
    }
  }

  /**
   * Stops heartbeating and leaves the group (LeaveGroup v5), so it rebalances (or
   * becomes Empty) at once instead of after the session timeout.
   */
  async leave(): Promise<void> {
    this.#stopped = true;
    await this.#stopHeartbeats();
    const conn = this.#conn;
    if (conn === null || this.#memberId === "") return;
    const res = await this.#client.request(conn, ApiKey.LeaveGroup, 5, {
      groupId: this.#group,
      memberId: "",
      members: [{
        memberId: this.#memberId,
        groupInstanceId: null,
        reason: "tidelog consume done",
      }],
    });
    const code = res.members[0]?.errorCode ?? res.errorCode;
    if (
      res.errorCode !== ErrorCode.NONE ||
      (code !== ErrorCode.NONE && code !== ErrorCode.UNKNOWN_MEMBER_ID)
    ) {
      throw new KafkaCallError(`leave group ${this.#group}`, res.errorCode || code);
    }
  }

  /** Stops heartbeating without leaving (the member expires after its session). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#stopHeartbeats();
  }
}
