/**
 * A deterministic driver for GroupCoordinator tests: plain-number time, seeded Random,
 * request objects filled in the way the shell's decoder fills them (encode a partial body
 * for the version, decode it back), every response checked to encode for its version, and
 * every record kept for load() checks. Like the shell, it reports each output's append as
 * complete (at once, or when the test says so with `holdAppends`).
 */
import {
  ApiKey,
  decodeRequestBody,
  type DeepPartial,
  encodeData,
  encodeRequestBody,
  encodeResponseBody,
  type RequestTypes,
  type ResponseTypes,
} from "../../../lib/protocol/mod.ts";
import { Random } from "../../../lib/util/random.ts";
import {
  type CoordinatorOutput,
  DEFAULT_GROUP_CONFIG,
  GroupCoordinator,
  type GroupCoordinatorConfig,
  type GroupRecord,
} from "../../../lib/group/mod.ts";
import type { Logger } from "@logtape/logtape";

export const T0 = 1_700_000_000_000;

/** A config for tests: no initial delay unless asked, Kafka's other defaults. */
export function testConfig(o: Partial<GroupCoordinatorConfig> = {}): GroupCoordinatorConfig {
  return { ...DEFAULT_GROUP_CONFIG, initialRebalanceDelayMs: 0, ...o };
}

/** A logger that drops everything (tests stay quiet without configuring LogTape). */
export const silentLog: Logger = new Proxy({} as Logger, {
  get: (_t, prop) => prop === "with" || prop === "getChild" ? () => silentLog : () => {},
});

/** Builds the full request the decoder would give the coordinator. */
export function request<K extends keyof RequestTypes>(
  apiKey: K,
  version: number,
  body: DeepPartial<RequestTypes[K]>,
): RequestTypes[K] {
  return decodeRequestBody(apiKey, version, encodeRequestBody(apiKey, version, body));
}

/** ConsumerProtocolSubscription bytes: int16 version, then the v`version` body. */
export function subscription(topics: string[], version = 0): Uint8Array {
  const body = encodeData("ConsumerProtocolSubscription", version, { topics, userData: null });
  const out = new Uint8Array(2 + body.length);
  out[1] = version;
  out.set(body, 2);
  return out;
}

type Resp<K extends keyof ResponseTypes> = ResponseTypes[K];

/** What the harness remembers of a request still waiting for its response. */
interface Sent {
  apiKey: keyof ResponseTypes;
  version: number;
}

export interface JoinOpts {
  groupId?: string;
  memberId?: string;
  groupInstanceId?: string | null;
  sessionTimeoutMs?: number;
  rebalanceTimeoutMs?: number;
  protocolType?: string;
  protocols?: { name: string; metadata?: Uint8Array }[];
  version?: number;
  clientId?: string;
}

/** Drives one coordinator; `now` is the time every call uses. */
export class Harness {
  readonly core: GroupCoordinator;
  now = T0;
  /** Every record emitted, in order. */
  readonly records: GroupRecord[] = [];
  /** Responses by request id (filled when they are released). */
  readonly responses = new Map<number, unknown>();
  /** Requests still without a response. */
  readonly waiting = new Map<number, Sent>();
  /** The last output, for checks on ordering. */
  last: CoordinatorOutput = { responses: [], records: [], appendId: null };
  /**
   * While true, outputs with records wait in `held` until `completeAppend()` or
   * `failAppend()` (an append to `__consumer_offsets` in flight); otherwise their append
   * completes as soon as they are absorbed. Their responses are recorded at once anyway.
   */
  holdAppends = false;
  /** Outputs whose append is in flight, oldest first. */
  readonly held: CoordinatorOutput[] = [];
  #nextId = 1;

  constructor(config: GroupCoordinatorConfig = testConfig(), seed = 1) {
    this.core = new GroupCoordinator(config, { random: new Random(seed), log: silentLog });
  }

  /** Takes an output as the shell does: its records are appended, then its responses sent. */
  absorb(out: CoordinatorOutput): CoordinatorOutput {
    return this.#absorb(out);
  }

  /** The oldest held append is now durable (below the high watermark). */
  completeAppend(out: CoordinatorOutput = this.#nextHeld()): void {
    this.held.splice(this.held.indexOf(out), 1);
    this.core.onAppendCompleted(out.appendId!);
  }

  /** The oldest held append failed (not durable, leadership lost, fsync error). */
  failAppend(out: CoordinatorOutput = this.#nextHeld()): void {
    this.held.splice(this.held.indexOf(out), 1);
    this.core.onAppendFailed(out.appendId!);
  }

  #nextHeld(): CoordinatorOutput {
    const out = this.held[0];
    if (out === undefined) throw new Error("No append is in flight");
    return out;
  }

  #absorb(out: CoordinatorOutput): CoordinatorOutput {
    this.last = out;
    this.records.push(...out.records, ...(out.txn?.records ?? []));
    if (out.records.length > 0 || out.txn !== undefined) {
      if (out.appendId === null) throw new Error("Records without an appendId");
      if (this.holdAppends) this.held.push(out);
      else this.core.onAppendCompleted(out.appendId);
    }
    for (const { requestId, response } of out.responses) {
      const sent = this.waiting.get(requestId);
      if (sent === undefined) {
        throw new Error(`Response for unknown or answered request ${requestId}`);
      }
      // Every response must encode for its request's version.
      encodeResponseBody(sent.apiKey, sent.version, response as never);
      this.waiting.delete(requestId);
      this.responses.set(requestId, response);
    }
    return out;
  }

  #send(apiKey: keyof ResponseTypes, version: number): number {
    const id = this.#nextId++;
    this.waiting.set(id, { apiKey, version });
    return id;
  }

  /** The response of request `id`, or undefined while it waits. */
  response<K extends keyof ResponseTypes>(_apiKey: K, id: number): Resp<K> | undefined {
    return this.responses.get(id) as Resp<K> | undefined;
  }

  advance(ms: number): CoordinatorOutput {
    this.now += ms;
    return this.tick();
  }

  tick(): CoordinatorOutput {
    return this.#absorb(this.core.tick(this.now));
  }

  /** Advances to the next deadline (if any, and not beyond `limitMs` from now) and ticks. */
  runNextTimer(limitMs = Infinity): boolean {
    const d = this.core.nextDeadlineMs();
    if (d === null || d - this.now > limitMs) return false;
    this.now = Math.max(this.now, d);
    this.tick();
    return true;
  }

  join(o: JoinOpts = {}): number {
    const version = o.version ?? 9;
    const id = this.#send(ApiKey.JoinGroup, version);
    const req = request(ApiKey.JoinGroup, version, {
      groupId: o.groupId ?? "g",
      sessionTimeoutMs: o.sessionTimeoutMs ?? 10_000,
      rebalanceTimeoutMs: o.rebalanceTimeoutMs ?? 30_000,
      memberId: o.memberId ?? "",
      groupInstanceId: o.groupInstanceId ?? null,
      protocolType: o.protocolType ?? "consumer",
      protocols: (o.protocols ?? [{ name: "range", metadata: subscription(["t"]) }]).map((p) => ({
        name: p.name,
        metadata: p.metadata ?? subscription(["t"]),
      })),
    });
    this.#absorb(
      this.core.joinGroup(id, req, version, this.now, {
        clientId: o.clientId ?? "client",
        clientHost: "/127.0.0.1",
      }),
    );
    return id;
  }

  joinResponse(id: number): Resp<11> {
    const r = this.response(ApiKey.JoinGroup, id);
    if (r === undefined) throw new Error(`JoinGroup ${id} has no response yet`);
    return r;
  }

  /** v4+ join of a new dynamic member: MEMBER_ID_REQUIRED, then the real join. */
  joinNew(o: JoinOpts = {}): number {
    const first = this.joinResponse(this.join({ ...o, memberId: "" }));
    if (first.errorCode !== 79) {
      throw new Error(`Expected MEMBER_ID_REQUIRED, got ${first.errorCode}`);
    }
    return this.join({ ...o, memberId: first.memberId });
  }

  sync(o: {
    groupId?: string;
    memberId: string;
    generationId: number;
    groupInstanceId?: string | null;
    assignments?: { memberId: string; assignment: Uint8Array }[];
    version?: number;
    protocolType?: string | null;
    protocolName?: string | null;
  }): number {
    const version = o.version ?? 5;
    const id = this.#send(ApiKey.SyncGroup, version);
    const req = request(ApiKey.SyncGroup, version, {
      groupId: o.groupId ?? "g",
      generationId: o.generationId,
      memberId: o.memberId,
      groupInstanceId: o.groupInstanceId ?? null,
      protocolType: o.protocolType === undefined ? "consumer" : o.protocolType,
      protocolName: o.protocolName === undefined ? "range" : o.protocolName,
      assignments: o.assignments ?? [],
    });
    this.#absorb(this.core.syncGroup(id, req, version, this.now));
    return id;
  }

  syncResponse(id: number): Resp<14> {
    const r = this.response(ApiKey.SyncGroup, id);
    if (r === undefined) throw new Error(`SyncGroup ${id} has no response yet`);
    return r;
  }

  heartbeat(o: {
    groupId?: string;
    memberId: string;
    generationId: number;
    groupInstanceId?: string | null;
    version?: number;
  }): number {
    const version = o.version ?? 4;
    const id = this.#send(ApiKey.Heartbeat, version);
    const req = request(ApiKey.Heartbeat, version, {
      groupId: o.groupId ?? "g",
      generationId: o.generationId,
      memberId: o.memberId,
      groupInstanceId: o.groupInstanceId ?? null,
    });
    this.#absorb(this.core.heartbeat(id, req, version, this.now));
    return (this.response(ApiKey.Heartbeat, id) as Resp<12>).errorCode;
  }

  leave(
    o: {
      groupId?: string;
      memberId?: string;
      members?: { memberId: string; groupInstanceId?: string | null }[];
      version?: number;
    },
  ): Resp<13> {
    const version = o.version ?? 5;
    const id = this.#send(ApiKey.LeaveGroup, version);
    const req = request(ApiKey.LeaveGroup, version, {
      groupId: o.groupId ?? "g",
      memberId: o.memberId ?? "",
      members: (o.members ?? []).map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId ?? null,
      })),
    });
    this.#absorb(this.core.leaveGroup(id, req, version, this.now));
    return this.response(ApiKey.LeaveGroup, id)!;
  }

  commit(o: {
    groupId?: string;
    memberId?: string;
    generationId?: number;
    groupInstanceId?: string | null;
    retentionTimeMs?: bigint;
    offsets: {
      topic: string;
      partition: number;
      offset: number;
      metadata?: string | null;
      leaderEpoch?: number;
    }[];
    version?: number;
  }): Resp<8> {
    const version = o.version ?? 8;
    const id = this.#send(ApiKey.OffsetCommit, version);
    const topics = new Map<
      string,
      {
        partitionIndex: number;
        committedOffset: bigint;
        committedMetadata: string | null;
        committedLeaderEpoch: number;
      }[]
    >();
    for (const x of o.offsets) {
      const list = topics.get(x.topic) ?? [];
      list.push({
        partitionIndex: x.partition,
        committedOffset: BigInt(x.offset),
        committedMetadata: x.metadata === undefined ? "" : x.metadata,
        committedLeaderEpoch: x.leaderEpoch ?? -1,
      });
      topics.set(x.topic, list);
    }
    const req = request(ApiKey.OffsetCommit, version, {
      groupId: o.groupId ?? "g",
      generationIdOrMemberEpoch: o.generationId ?? -1,
      memberId: o.memberId ?? "",
      groupInstanceId: o.groupInstanceId ?? null,
      retentionTimeMs: o.retentionTimeMs ?? -1n,
      topics: [...topics].map(([name, partitions]) => ({ name, partitions })),
    });
    this.#absorb(this.core.offsetCommit(id, req, version, this.now));
    return this.response(ApiKey.OffsetCommit, id)!;
  }

  /** TxnOffsetCommit v3 of producer `producerId` for group `groupId`. */
  txnCommit(o: {
    groupId?: string;
    producerId: bigint;
    offsets: { topic: string; partition: number; offset: number }[];
  }): CoordinatorOutput {
    const id = this.#send(ApiKey.TxnOffsetCommit, 3);
    const req = request(ApiKey.TxnOffsetCommit, 3, {
      transactionalId: "tx",
      groupId: o.groupId ?? "g",
      producerId: o.producerId,
      producerEpoch: 0,
      generationId: -1,
      memberId: "",
      groupInstanceId: null,
      topics: [...new Set(o.offsets.map((x) => x.topic))].map((name) => ({
        name,
        partitions: o.offsets.filter((x) => x.topic === name).map((x) => ({
          partitionIndex: x.partition,
          committedOffset: BigInt(x.offset),
          committedLeaderEpoch: -1,
          committedMetadata: "",
        })),
      })),
    });
    return this.#absorb(this.core.txnOffsetCommit(id, req, 3, this.now));
  }

  /** OffsetFetch v7 with requireStable of one partition: [code, offset]. */
  fetchStable(groupId: string, topic: string, partition: number): [number, bigint] {
    const r = this.core.offsetFetch(
      request(ApiKey.OffsetFetch, 7, {
        groupId,
        topics: [{ name: topic, partitionIndexes: [partition] }],
        requireStable: true,
      }),
      7,
    ) as Resp<9>;
    const p = r.topics[0]!.partitions[0]!;
    return [p.errorCode, p.committedOffset];
  }

  /** The codes of a commit response, flattened to "topic-partition:code". */
  static commitCodes(r: Resp<8>): string[] {
    return r.topics.flatMap((t) =>
      t.partitions.map((p) => `${t.name}-${p.partitionIndex}:${p.errorCode}`)
    );
  }

  /** Committed offsets of a group via OffsetFetch v7 (all topics) as "t-p=offset". */
  fetchAll(groupId = "g"): string[] {
    const r = this.core.offsetFetch(
      request(ApiKey.OffsetFetch, 7, { groupId, topics: null }),
      7,
    ) as Resp<9>;
    return r.topics.flatMap((t) =>
      t.partitions.map((p) => `${t.name}-${p.partitionIndex}=${p.committedOffset}`)
    );
  }

  deleteGroups(groups: string[], version = 2): Resp<42> {
    const id = this.#send(ApiKey.DeleteGroups, version);
    this.#absorb(
      this.core.deleteGroups(
        id,
        request(ApiKey.DeleteGroups, version, { groupsNames: groups }),
        version,
        this.now,
      ),
    );
    return this.response(ApiKey.DeleteGroups, id)!;
  }

  offsetDelete(groupId: string, offsets: { topic: string; partitions: number[] }[]): Resp<47> {
    const id = this.#send(ApiKey.OffsetDelete, 0);
    const req = request(ApiKey.OffsetDelete, 0, {
      groupId,
      topics: offsets.map((o) => ({
        name: o.topic,
        partitions: o.partitions.map((p) => ({ partitionIndex: p })),
      })),
    });
    this.#absorb(this.core.offsetDelete(id, req, 0, this.now));
    return this.response(ApiKey.OffsetDelete, id)!;
  }

  /** Fires timers one deadline at a time until `done()` or no timer is left. */
  runUntil(done: () => boolean, maxSteps = 1000): void {
    for (let i = 0; i < maxSteps && !done(); i++) {
      if (!this.runNextTimer()) return;
    }
  }

  /**
   * Two dynamic members in a Stable group of the given generation: a (leader) and b.
   * `o` applies to both joins.
   */
  stablePair(o: JoinOpts = {}): { a: string; b: string; generationId: number } {
    const a = this.stableSingle({ ...o, clientId: "a" });
    const bj = this.joinNew({ ...o, clientId: "b" });
    const aj = this.joinResponse(this.join({ ...o, memberId: a.memberId, clientId: "a" }));
    const b = this.joinResponse(bj);
    this.sync({ groupId: o.groupId, memberId: b.memberId, generationId: b.generationId });
    this.sync({
      groupId: o.groupId,
      memberId: a.memberId,
      generationId: aj.generationId,
      assignments: [
        { memberId: a.memberId, assignment: new Uint8Array([0xa]) },
        { memberId: b.memberId, assignment: new Uint8Array([0xb]) },
      ],
    });
    return { a: a.memberId, b: b.memberId, generationId: aj.generationId };
  }

  /** Feeds an unload's output through the same checks. */
  unload(partition: number, partitions: number): CoordinatorOutput {
    return this.#absorb(this.core.unload(partition, partitions));
  }

  /** A single consumer through join and sync: its member id and generation. */
  stableSingle(o: JoinOpts = {}): { memberId: string; generationId: number } {
    const j = this.joinResponse(o.groupInstanceId ? this.join(o) : this.joinNew(o));
    if (j.errorCode !== 0) throw new Error(`join failed: ${j.errorCode}`);
    const s = this.syncResponse(
      this.sync({
        groupId: o.groupId,
        memberId: j.memberId,
        generationId: j.generationId,
        groupInstanceId: o.groupInstanceId,
        protocolType: j.protocolType,
        protocolName: j.protocolName,
        assignments: [{ memberId: j.memberId, assignment: new Uint8Array([1]) }],
      }),
    );
    if (s.errorCode !== 0) throw new Error(`sync failed: ${s.errorCode}`);
    return { memberId: j.memberId, generationId: j.generationId };
  }
}
