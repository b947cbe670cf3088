/**
 * The simulation's Kafka clients, each a simulated process on a client machine, talking
 * the real protocol (lib/client's KafkaConnection) over the simulated network:
 *
 * - a {@linkcode Router} (Metadata → leader per partition, re-read on errors);
 * - producers, one per partition and kind, one request in flight: plain (acks=all or 1,
 *   each value retried until acknowledged) and idempotent (acks=all, producer id and
 *   sequence numbers, the same batch retried, a new producer id after
 *   UNKNOWN_PRODUCER_ID/OUT_OF_ORDER_SEQUENCE_NUMBER);
 * - readers (plain Fetch from the leader, from offset 0 on).
 *
 * Everything they learn goes into the {@linkcode History} the checkers read: every
 * attempt and its outcome, every acknowledgement with its offset, every record read.
 */
import { KafkaConnection } from "../../../lib/client/mod.ts";
import {
  ApiKey,
  decodeRecords,
  type DeepPartial,
  ErrorCode,
  errorName,
  type RequestTypes,
  type ResponseTypes,
} from "../../../lib/protocol/mod.ts";
import type { Network, Timers } from "../../../lib/runtime/mod.ts";
import { sleep } from "../../../lib/runtime/mod.ts";
import { groupPartition } from "../../../lib/group/group_partition.ts";
import type { Random } from "../../../lib/util/random.ts";
import { withTimeout } from "../../../lib/util/timeout.ts";
import { buildBatch } from "../../unit/log/_batches.ts";
import type { SimProcess } from "../_runtime/scheduler.ts";

const decoder = new TextDecoder();

/** What the producers sent and the readers read. */
export class History {
  /** value → what happened to it. */
  readonly sent = new Map<string, SentValue>();
  /** partition → offset → value read by a reader (below the high watermark it reported). */
  readonly read = new Map<number, Map<number, string>>();
  /** Problems the clients saw that break an invariant on the spot. */
  readonly violations: string[] = [];
  /** partition → virtual times of acknowledgements (for the longest gap). */
  readonly ackTimes = new Map<number, number[]>();
  /** Error codes and failures seen by clients, counted by name. */
  readonly errors = new Map<string, number>();
  /**
   * Partitions that had an unclean election (leader recovery state RECOVERING seen):
   * acknowledged and read data may be lost there, by design; the checkers skip those.
   */
  readonly uncleanPartitions = new Set<number>();
  /** The same for `__consumer_offsets`: committed offsets may be lost there. */
  readonly uncleanOffsetsPartitions = new Set<number>();
  offsetsPartitionCount = 0;

  count(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }

  ack(v: SentValue, offset: number, at: number, node: number): void {
    if (v.acked !== null && v.acked.offset !== offset && !v.resentUnderNewId) {
      this.violations.push(
        `${v.value} acknowledged twice at different offsets ${v.acked.offset} and ${offset}`,
      );
    }
    v.acked ??= { offset, at, node };
    const times = this.ackTimes.get(v.partition) ?? [];
    times.push(at);
    this.ackTimes.set(v.partition, times);
  }

  noteRead(partition: number, offset: number, value: string): void {
    const seen = this.read.get(partition) ?? new Map<number, string>();
    this.read.set(partition, seen);
    const before = seen.get(offset);
    if (before !== undefined && before !== value) {
      this.violations.push(
        `partition ${partition} offset ${offset} read as ${before} and later as ${value}`,
      );
    }
    seen.set(offset, value);
  }
}

/** One value a producer tried to write. */
export interface SentValue {
  readonly value: string;
  readonly partition: number;
  readonly acks: number;
  readonly idempotent: boolean;
  /** Attempts whose outcome is unknown (the value may be in the log more than once). */
  ambiguous: number;
  /** An idempotent value resent under a new producer id (may be in the log twice). */
  resentUnderNewId: boolean;
  acked: { offset: number; at: number; node: number } | null;
}

/** Where a client process lives and how it reaches the cluster. */
export interface ClientEnv {
  readonly proc: SimProcess;
  readonly net: Network;
  readonly timers: Timers;
  readonly random: Random;
  /** Kafka addresses to bootstrap from. */
  readonly bootstrap: readonly { host: string; port: number }[];
  readonly topic: string;
  /** Virtual time now, for the history. */
  readonly now: () => number;
  /** Whether the run is over (loops stop). */
  readonly stopped: () => boolean;
}

/** Partition leaders from Metadata, and a connection per broker. */
export class Router {
  readonly #env: ClientEnv;
  readonly leaders = new Map<number, { leader: number; epoch: number }>();
  readonly #endpoints = new Map<number, { host: string; port: number }>();
  readonly #conns = new Map<number, Promise<KafkaConnection>>();
  #refreshing: Promise<void> | null = null;
  #ask = 0;

  constructor(env: ClientEnv) {
    this.#env = env;
  }

  /** A connection to broker `id` (opened on demand, dropped on failure). */
  connection(id: number): Promise<KafkaConnection> {
    const existing = this.#conns.get(id);
    if (existing) return existing;
    const ep = this.#endpoints.get(id) ?? this.#env.bootstrap[id - 1];
    if (!ep) return Promise.reject(new Error(`No address for broker ${id}`));
    const connecting = KafkaConnection.connect(ep.host, ep.port, "sim-client", {
      net: this.#env.net,
    });
    const conn = withTimeout(
      connecting,
      3000,
      () => connecting.then((c) => c.close(), () => {}),
      this.#env.timers,
    );
    this.#conns.set(id, conn);
    conn.then((c) => c.closed.finally(() => this.#forget(id, conn)), () => this.#forget(id, conn));
    return conn;
  }

  #forget(id: number, conn: Promise<KafkaConnection>): void {
    if (this.#conns.get(id) === conn) this.#conns.delete(id);
  }

  drop(id: number): void {
    const conn = this.#conns.get(id);
    this.#conns.delete(id);
    conn?.then((c) => c.close(), () => {});
  }

  /** Sends one request to broker `id`, dropping the connection if it fails or times out. */
  async request<K extends keyof RequestTypes & keyof ResponseTypes>(
    id: number,
    apiKey: K,
    version: number,
    body: DeepPartial<RequestTypes[K]>,
    timeoutMs: number,
  ): Promise<ResponseTypes[K]> {
    const conn = await this.connection(id);
    try {
      return await withTimeout(
        conn.request(apiKey, version, body),
        timeoutMs,
        undefined,
        this.#env.timers,
      );
    } catch (err) {
      this.drop(id);
      throw err;
    }
  }

  /** Re-reads the leaders (callers share one refresh in progress). */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refreshOnce().finally(() => (this.#refreshing = null));
    return this.#refreshing;
  }

  async #refreshOnce(): Promise<void> {
    const n = this.#env.bootstrap.length;
    for (let i = 0; i < n; i++) {
      const id = ((this.#ask + i) % n) + 1;
      try {
        const res = await this.request(id, ApiKey.Metadata, 12, {
          topics: [{ name: this.#env.topic }],
          allowAutoTopicCreation: false,
        }, 2000);
        const topic = res.topics.find((t) => t.name === this.#env.topic);
        if (!topic || topic.errorCode !== ErrorCode.NONE) continue;
        for (const b of res.brokers) this.#endpoints.set(b.nodeId, { host: b.host, port: b.port });
        for (const p of topic.partitions) {
          if (p.leaderId >= 0) {
            this.leaders.set(p.partitionIndex, { leader: p.leaderId, epoch: p.leaderEpoch });
          } else this.leaders.delete(p.partitionIndex);
        }
        this.#ask = (this.#ask + i) % n;
        return;
      } catch {
        // try the next broker
      }
    }
    this.#ask = (this.#ask + 1) % n;
  }
}

/** Produce errors after which the records may or may not be in the log. */
const AMBIGUOUS = new Set<number>([
  ErrorCode.REQUEST_TIMED_OUT,
  ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
  ErrorCode.KAFKA_STORAGE_ERROR,
  // Also answered when leadership is lost while the acknowledgement waits.
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.UNKNOWN_SERVER_ERROR,
]);

/** Options of {@linkcode runProducer}. */
export interface ProducerOptions {
  partition: number;
  acks: -1 | 1;
  idempotent: boolean;
  /** Prefix of the values ("p0-i" → "p0-i-17"). */
  name: string;
  /** Pause between acknowledged values, ms. */
  intervalMs: number;
}

/** A producer of unique values to one partition, one request in flight. */
export async function runProducer(
  env: ClientEnv,
  router: Router,
  history: History,
  o: ProducerOptions,
): Promise<void> {
  let producerId = -1n;
  let seq = 0;
  const initId = async (): Promise<void> => {
    for (;;) {
      if (env.stopped()) return;
      const id = env.random.int(1, env.bootstrap.length);
      try {
        const res = await router.request(id, ApiKey.InitProducerId, 4, {
          transactionalId: null,
          transactionTimeoutMs: 60_000,
          producerId: -1n,
          producerEpoch: -1,
        }, 5000);
        if (res.errorCode === ErrorCode.NONE) {
          producerId = res.producerId;
          seq = 0;
          return;
        }
        history.count(`InitProducerId ${errorName(res.errorCode)}`);
      } catch {
        history.count("InitProducerId failed");
      }
      await sleep(env.timers, 100);
    }
  };
  if (o.idempotent) await initId();
  for (let n = 0; !env.stopped(); n++) {
    const v: SentValue = {
      value: `${o.name}-${n}`,
      partition: o.partition,
      acks: o.acks,
      idempotent: o.idempotent,
      ambiguous: 0,
      resentUnderNewId: false,
      acked: null,
    };
    history.sent.set(v.value, v);
    let batchId = producerId;
    let batchSeq = seq;
    while (v.acked === null && !env.stopped()) {
      const route = router.leaders.get(o.partition);
      if (route === undefined) {
        await router.refresh();
        if (!router.leaders.has(o.partition)) await sleep(env.timers, 50);
        continue;
      }
      const records = buildBatch({
        records: [{ value: v.value }],
        baseTimestampMs: env.proc.clock.nowMs(),
        ...(o.idempotent ? { producerId: batchId, producerEpoch: 0, baseSequence: batchSeq } : {}),
      });
      let code: number;
      let offset = -1;
      try {
        const res = await router.request(route.leader, ApiKey.Produce, 9, {
          transactionalId: null,
          acks: o.acks,
          timeoutMs: 3000,
          topicData: [{ name: env.topic, partitionData: [{ index: o.partition, records }] }],
        }, 5000);
        const p = res.responses[0]?.partitionResponses[0];
        if (!p) throw new Error("Produce response without the partition");
        code = p.errorCode;
        offset = Number(p.baseOffset);
      } catch {
        history.count("Produce failed");
        v.ambiguous++;
        await router.refresh();
        await sleep(env.timers, 20);
        continue;
      }
      if (code === ErrorCode.NONE) {
        history.ack(v, offset, env.now(), route.leader);
        break;
      }
      history.count(`Produce ${errorName(code)}`);
      if (AMBIGUOUS.has(code)) v.ambiguous++;
      if (
        o.idempotent &&
        (code === ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER || code === ErrorCode.UNKNOWN_PRODUCER_ID)
      ) {
        // KIP-360-style recovery: a fresh id; the value may now be in the log twice.
        await initId();
        batchId = producerId;
        batchSeq = seq;
        v.resentUnderNewId = true;
        continue;
      }
      await router.refresh();
      await sleep(env.timers, 20);
    }
    if (o.idempotent && v.acked !== null) seq = batchSeq + 1;
    if (o.intervalMs > 0) await sleep(env.timers, o.intervalMs);
  }
}

/**
 * The partition's log start as its leader answers ListOffsets EARLIEST (what a consumer
 * asks after OFFSET_OUT_OF_RANGE: as Kafka, the Fetch error itself carries no offsets);
 * -1 if the answer does not come.
 */
async function earliestOffset(
  router: Router,
  leader: number,
  topic: string,
  partition: number,
): Promise<number> {
  try {
    const res = await router.request(leader, ApiKey.ListOffsets, 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{
        name: topic,
        partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -2n }],
      }],
    }, 3000);
    const p = res.topics[0]?.partitions[0];
    return p && p.errorCode === ErrorCode.NONE ? Number(p.offset) : -1;
  } catch {
    return -1;
  }
}

/** A reader of one partition from offset 0, recording what it reads. */
export async function runReader(
  env: ClientEnv,
  router: Router,
  history: History,
  partition: number,
): Promise<void> {
  let next = 0;
  while (!env.stopped()) {
    const route = router.leaders.get(partition);
    if (route === undefined) {
      await router.refresh();
      await sleep(env.timers, 50);
      continue;
    }
    let p;
    try {
      const res = await router.request(route.leader, ApiKey.Fetch, 11, {
        replicaId: -1,
        maxWaitMs: 200,
        minBytes: 1,
        maxBytes: 1 << 20,
        isolationLevel: 0,
        topics: [{
          topic: env.topic,
          partitions: [{ partition, fetchOffset: BigInt(next), partitionMaxBytes: 1 << 20 }],
        }],
      }, 3000);
      p = res.responses[0]?.partitions[0];
      if (!p) throw new Error("Fetch response without the partition");
    } catch {
      history.count("Fetch failed");
      await router.refresh();
      await sleep(env.timers, 20);
      continue;
    }
    if (p.errorCode !== ErrorCode.NONE) {
      history.count(`Fetch ${errorName(p.errorCode)}`);
      if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
        const start = await earliestOffset(router, route.leader, env.topic, partition);
        if (start < 0) {
          // No answer: try the fetch again.
        } else if (next < start) {
          // Retention deleted what we had not read yet: go on from the log start.
          next = start;
        } else if (next > 0 && !history.uncleanPartitions.has(partition)) {
          // Past the leader's end: what we read (below a high watermark) is gone.
          history.violations.push(
            `reader of partition ${partition} at ${next} got OFFSET_OUT_OF_RANGE from ${route.leader} (log start ${start})`,
          );
        }
      }
      await router.refresh();
      await sleep(env.timers, 20);
      continue;
    }
    const hw = Number(p.highWatermark);
    for (const r of decodeRecords(p.records ?? new Uint8Array(0))) {
      if (r.offset < next) continue;
      if (r.offset !== next) {
        history.violations.push(
          `reader of partition ${partition} expected offset ${next}, got ${r.offset} from ${route.leader}`,
        );
      }
      if (r.offset >= hw) {
        history.violations.push(
          `Fetch of partition ${partition} from ${route.leader} returned offset ${r.offset} at or above its high watermark ${hw} (I4)`,
        );
      }
      history.noteRead(partition, r.offset, r.value === null ? "<null>" : decoder.decode(r.value));
      next = r.offset + 1;
    }
  }
}

/**
 * Reads partition `partition` from its leader up to the high watermark; null while there
 * is no leader or the leader fails.
 */
export async function readToHighWatermark(
  env: ClientEnv,
  router: Router,
  partition: number,
): Promise<{ leader: number; hw: number; logStart: number; values: Map<number, string> } | null> {
  await router.refresh();
  const route = router.leaders.get(partition);
  if (route === undefined) return null;
  const values = new Map<number, string>();
  let next = 0;
  let hw = -1;
  let logStart = 0;
  for (;;) {
    let p;
    try {
      const res = await router.request(route.leader, ApiKey.Fetch, 11, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 20,
        isolationLevel: 0,
        topics: [{
          topic: env.topic,
          partitions: [{ partition, fetchOffset: BigInt(next), partitionMaxBytes: 1 << 20 }],
        }],
      }, 3000);
      p = res.responses[0]?.partitions[0];
    } catch {
      return null;
    }
    if (p?.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
      const start = await earliestOffset(router, route.leader, env.topic, partition);
      if (start > next) {
        next = logStart = start;
        continue;
      }
    }
    if (!p || p.errorCode !== ErrorCode.NONE) return null;
    hw = Number(p.highWatermark);
    logStart = Math.max(logStart, Number(p.logStartOffset));
    const records = decodeRecords(p.records ?? new Uint8Array(0)).filter((r) => r.offset >= next);
    if (records.length === 0 || next >= hw) break;
    for (const r of records) {
      if (r.offset >= hw) break;
      values.set(r.offset, r.value === null ? "<null>" : decoder.decode(r.value));
      next = r.offset + 1;
    }
    if (next >= hw) break;
  }
  return { leader: route.leader, hw, logStart, values };
}

/** What the committers learnt: per group, the commits acknowledged and offsets seen. */
export class CommitHistory {
  /** group → the highest commit acknowledged. */
  readonly acked = new Map<string, number>();
  /** group → the highest offset an OffsetFetch returned. */
  readonly seen = new Map<string, number>();
  /**
   * group → offsets whose commit attempt failed or timed out: such an attempt may still be
   * applied later (a request held in a cut link reaches the coordinator after the retry
   * was acknowledged), and a simple consumer's commits are last-writer-wins, in Kafka too.
   */
  readonly uncertain = new Map<string, Set<number>>();
  commits = 0;

  attemptFailed(group: string, offset: number): void {
    let s = this.uncertain.get(group);
    if (s === undefined) this.uncertain.set(group, s = new Set());
    s.add(offset);
  }
}

const COMMIT_PARTITION = 0;

/** Finds `group`'s coordinator; null if no broker knows one now. */
async function findCoordinator(
  env: ClientEnv,
  router: Router,
  group: string,
): Promise<number | null> {
  const id = env.random.int(1, env.bootstrap.length);
  try {
    const res = await router.request(
      id,
      ApiKey.FindCoordinator,
      3,
      { key: group, keyType: 0 },
      3000,
    );
    return res.errorCode === ErrorCode.NONE ? res.nodeId : null;
  } catch {
    return null;
  }
}

/**
 * A "simple" consumer's commits (generation -1, as after assign()): increasing offsets of
 * one partition for `group`, each acknowledged one recorded, with an OffsetFetch after
 * each. An acknowledged commit must be visible from then on (never lost), and an offset
 * OffsetFetch once showed must never go back (it showed only what is durable).
 */
export async function runCommitter(
  env: ClientEnv,
  router: Router,
  history: History,
  commits: CommitHistory,
  group: string,
): Promise<void> {
  let coordinator: number | null = null;
  let next = 1;
  while (!env.stopped()) {
    coordinator ??= await findCoordinator(env, router, group);
    if (coordinator === null) {
      await sleep(env.timers, 100);
      continue;
    }
    try {
      const res = await router.request(coordinator, ApiKey.OffsetCommit, 8, {
        groupId: group,
        generationIdOrMemberEpoch: -1,
        memberId: "",
        groupInstanceId: null,
        topics: [{
          name: env.topic,
          partitions: [{
            partitionIndex: COMMIT_PARTITION,
            committedOffset: BigInt(next),
            committedLeaderEpoch: -1,
            committedMetadata: null,
          }],
        }],
      }, 5000);
      const code = res.topics[0]?.partitions[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
      if (code === ErrorCode.NONE) {
        commits.commits++;
        commits.acked.set(group, Math.max(commits.acked.get(group) ?? 0, next));
        next++;
      } else {
        history.count(`OffsetCommit ${errorName(code)}`);
        commits.attemptFailed(group, next);
        coordinator = null;
      }
      const seen = await fetchCommitted(env, router, coordinator ?? -1, group);
      if (seen !== null) {
        checkCommitted(history, commits, group, seen);
      }
    } catch {
      history.count("OffsetCommit failed");
      commits.attemptFailed(group, next);
      coordinator = null;
    }
    await sleep(env.timers, 20);
  }
}

/** OffsetFetch of the committed offset (-1 when none); null on any failure. */
export async function fetchCommitted(
  env: ClientEnv,
  router: Router,
  coordinator: number,
  group: string,
): Promise<number | null> {
  if (coordinator < 0) return null;
  try {
    const res = await router.request(coordinator, ApiKey.OffsetFetch, 7, {
      groupId: group,
      topics: [{ name: env.topic, partitionIndexes: [COMMIT_PARTITION] }],
      requireStable: false,
    }, 3000);
    if (res.errorCode !== ErrorCode.NONE) return null;
    const p = res.topics[0]?.partitions[0];
    if (!p || p.errorCode !== ErrorCode.NONE) return null;
    return Number(p.committedOffset);
  } catch {
    return null;
  }
}

/** Checks an offset OffsetFetch returned against what was acknowledged and seen before. */
export function checkCommitted(
  history: History,
  commits: CommitHistory,
  group: string,
  seen: number,
): void {
  const acked = commits.acked.get(group) ?? -1;
  const before = commits.seen.get(group) ?? -1;
  const unclean = history.offsetsPartitionCount > 0 &&
    history.uncleanOffsetsPartitions.has(groupPartition(group, history.offsetsPartitionCount));
  // A coordinator partition that had an unclean election may lose commits, by design.
  if (unclean) {
    commits.seen.set(group, seen);
    return;
  }
  // An earlier attempt of this offset landed late: it overwrote later commits.
  if (commits.uncertain.get(group)?.has(seen)) return;
  if (seen < acked) {
    history.violations.push(
      `group ${group}: OffsetFetch returned ${seen} after commit ${acked} was acknowledged (an acknowledged commit lost)`,
    );
  } else if (seen < before) {
    history.violations.push(
      `group ${group}: OffsetFetch returned ${seen} after it had returned ${before} (a commit was visible before it was durable)`,
    );
  }
  commits.seen.set(group, Math.max(before, seen));
}

/** The coordinator of `group` from any broker, retried (for the end of a run). */
export async function coordinatorOf(
  env: ClientEnv,
  router: Router,
  group: string,
): Promise<number | null> {
  for (let i = 0; i < 50; i++) {
    const c = await findCoordinator(env, router, group);
    if (c !== null) return c;
    await sleep(env.timers, 100);
  }
  return null;
}
