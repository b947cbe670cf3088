/**
 * The workload and the checker the chaos tests share (`tests/chaos/`): an acks=all
 * producer and a reader per partition, with a client's own routing, while a test injects
 * faults; then the whole topic read back from the leaders and checked for I1 and I4
 * (DESIGN §10):
 *
 * - every acknowledged value is present, at the offset its acknowledgement named;
 * - no value is duplicated unless an attempt of it had an unknown outcome (a timeout or a
 *   lost connection after sending; the producer is not idempotent, so its retry may
 *   legitimately write it twice);
 * - per partition, values keep the producer's order (the producer has one request in flight
 *   per partition and sends value n+1 only after value n was acknowledged or given up);
 * - no Fetch returns a record at or above the high watermark it reports, and whatever a
 *   reader saw below a high watermark during the faults is still there, unchanged, at the
 *   end (data below the HW is committed and is never truncated).
 *
 * Values are `p<partition>-<seq>`, unique per run. The producer and readers use the raw
 * protocol client ({@linkcode KafkaConnection}) through a {@linkcode Router}: Metadata →
 * leader per partition, re-read on errors.
 */
import assert from "node:assert/strict";
import { KafkaConnection } from "../../lib/client/mod.ts";
import {
  ApiKey,
  decodeRecords,
  encodeRecordBatch,
  ErrorCode,
  errorName,
} from "../../lib/protocol/mod.ts";
import { TimeoutError, withTimeout } from "../../lib/util/timeout.ts";
import type { TestCluster } from "./cluster.ts";

/** Broker-side acks=all timeout of a produce. */
export const PRODUCE_TIMEOUT_MS = 5000;
/** Client-side wait for any reply; past it the connection is dropped (outcome unknown). */
const REPLY_TIMEOUT_MS = 8000;
/** A value still not acknowledged after this long is given up (counted as failed). */
const VALUE_GIVE_UP_MS = 10_000;
/** Pause between two values of one partition (keeps 3 nodes on 2 cores responsive). */
const SEND_INTERVAL_MS = 10;
const RETRY_BACKOFF_MS = 50;
/** How long a connection attempt or a Metadata request of the router may take. */
const ROUTER_TIMEOUT_MS = 2000;
/** Once one node has answered Metadata, how much longer the others are waited for. */
const METADATA_STRAGGLER_MS = 300;

/**
 * Produce errors that mean the batch was not appended anywhere. Not NOT_LEADER_OR_FOLLOWER:
 * as in Kafka, an acks=all produce already appended by a leader that then loses its
 * leadership is answered with it, and the batch may still be committed by the new leader.
 */
const NOT_APPENDED = new Set<number>([
  ErrorCode.NOT_ENOUGH_REPLICAS,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.LEADER_NOT_AVAILABLE,
]);
/** Errors after which the leader map is re-read. */
const REFRESH_ON = new Set<number>([
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.NOT_ENOUGH_REPLICAS,
  ErrorCode.REQUEST_TIMED_OUT,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
]);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** A test's timeline: `say()` prints a line stamped with the seconds since `started`. */
export interface Reporter {
  readonly started: number;
  elapsed(): number;
  say(message: string): void;
}

/** A {@linkcode Reporter} whose lines start `[tag   12.34 s]`. */
export function reporter(tag: string): Reporter {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  return {
    started,
    elapsed,
    say(message: string): void {
      // deno-lint-ignore no-console -- the fault timeline and figures are the report
      console.error(`[${tag} ${(elapsed() / 1000).toFixed(2).padStart(7)} s] ${message}`);
    },
  };
}

interface Slot {
  conn: Promise<KafkaConnection>;
  dead: boolean;
}

/**
 * Leader routing as a client does it: a leader map from Metadata, re-read on demand, and
 * one connection per (user, node) so that one partition's slow reply never holds up
 * another's. A refresh asks every node at once and keeps, per partition, the answer with
 * the highest leader epoch (as clients do since KIP-320), so that a node cut off from the
 * others, whose image is stale, does not send the client back to a deposed leader.
 */
export class Router {
  readonly leaders = new Map<number, { leader: number; epoch: number }>();
  readonly #cluster: TestCluster;
  readonly #topic: string;
  readonly #slots = new Map<string, Slot>();
  readonly #endpoints = new Map<number, { host: string; port: number }>();
  /** partition → highest leader epoch any node reported (with or without a leader). */
  readonly #epochs = new Map<number, number>();
  #refreshing: Promise<void> | null = null;
  #lastRefresh = 0;
  refreshes = 0;

  constructor(cluster: TestCluster, topic: string) {
    this.#cluster = cluster;
    this.#topic = topic;
  }

  #endpoint(node: number): { host: string; port: number } {
    const n = this.#cluster.node(node);
    return this.#endpoints.get(node) ?? { host: n.kafkaHost, port: n.kafkaPort };
  }

  /** A live connection of `user` to `node` (made on demand). */
  async connection(user: string, node: number): Promise<KafkaConnection> {
    const key = `${user}@${node}`;
    let slot = this.#slots.get(key);
    if (slot?.dead) {
      this.drop(user, node);
      slot = undefined;
    }
    if (!slot) {
      const { host, port } = this.#endpoint(node);
      const connecting = KafkaConnection.connect(host, port, `chaos-${user}`);
      const made: Slot = {
        // A connection that completes after the timeout is closed at once.
        conn: withTimeout(
          connecting,
          ROUTER_TIMEOUT_MS,
          () => connecting.then((c) => c.close()).catch(() => {}),
        ),
        dead: false,
      };
      this.#slots.set(key, made);
      made.conn.then(
        (c) => c.closed.finally(() => made.dead = true),
        () => made.dead = true,
      ).catch(() => {});
      slot = made;
    }
    return await slot.conn;
  }

  /** Closes the connection of `user` to `node`; pending requests on it fail. */
  drop(user: string, node: number): void {
    const key = `${user}@${node}`;
    const slot = this.#slots.get(key);
    if (!slot) return;
    this.#slots.delete(key);
    slot.dead = true;
    slot.conn.then((c) => c.close()).catch(() => {});
  }

  /** Re-reads the leader map (concurrent callers share one refresh; at most one per 50 ms). */
  refresh(): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    this.#refreshing = (async () => {
      const wait = this.#lastRefresh + 50 - performance.now();
      if (wait > 0) await sleep(wait);
      try {
        await this.#refreshOnce();
      } finally {
        this.#lastRefresh = performance.now();
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }

  async #refreshOnce(): Promise<void> {
    this.refreshes++;
    const answers = this.#cluster.nodes.map((n) => this.#askMetadata(n.id));
    // Every answer, or the first one and whatever comes within a short while after it.
    await Promise.race([
      Promise.allSettled(answers),
      Promise.any(answers).then(() => sleep(METADATA_STRAGGLER_MS), () => {}),
    ]);
  }

  async #askMetadata(node: number): Promise<void> {
    try {
      const conn = await this.connection("metadata", node);
      const res = await withTimeout(
        conn.request(ApiKey.Metadata, 12, { topics: [{ name: this.#topic }] }),
        ROUTER_TIMEOUT_MS,
        () => this.drop("metadata", node),
      );
      const topic = res.topics.find((tp) => tp.name === this.#topic);
      if (!topic || topic.errorCode !== ErrorCode.NONE) throw new Error("topic not known");
      for (const b of res.brokers) this.#endpoints.set(b.nodeId, { host: b.host, port: b.port });
      for (const p of topic.partitions) {
        const known = this.#epochs.get(p.partitionIndex) ?? -1;
        if (p.leaderEpoch < known) continue; // a stale image: ignored
        this.#epochs.set(p.partitionIndex, p.leaderEpoch);
        if (p.leaderId >= 0) {
          this.leaders.set(p.partitionIndex, { leader: p.leaderId, epoch: p.leaderEpoch });
        } else this.leaders.delete(p.partitionIndex);
      }
    } catch (err) {
      this.drop("metadata", node);
      throw err;
    }
  }

  close(): void {
    for (const key of [...this.#slots.keys()]) {
      const at = key.lastIndexOf("@");
      this.drop(key.slice(0, at), Number(key.slice(at + 1)));
    }
  }
}

export type Outcome =
  | { kind: "acked"; node: number; offset: number; at: number }
  | { kind: "rejected"; node: number; why: string }
  | { kind: "unknown"; node: number; why: string };

/** One value the producer tried to write. */
export interface Sent {
  partition: number;
  seq: number;
  value: string;
  /** When its first attempt began (performance.now()). */
  sentAt: number;
  attempts: Outcome[];
  acked: { node: number; offset: number; at: number } | null;
}

/** What the reader of one partition saw while the faults ran. */
export interface ReaderState {
  /** offset → value seen below a high watermark during the run. */
  observed: Map<number, string>;
  aboveHw: string[];
  changed: string[];
  fetches: number;
  errors: Map<string, number>;
}

/** Options of {@linkcode ChaosWorkload}. */
export interface ChaosWorkloadOptions {
  topic: string;
  partitions: number;
}

/** The acks=all producer and the reader of every partition, started and stopped together. */
export class ChaosWorkload {
  readonly topic: string;
  readonly partitions: number;
  readonly router: Router;
  readonly sent: Sent[] = [];
  readonly readers = new Map<number, ReaderState>();
  readonly produceErrors = new Map<string, number>();
  readonly #ackListeners: ((partition: number, node: number, at: number) => void)[] = [];
  #stopProducing = false;
  #stopReading = false;
  #producers: Promise<void>[] = [];
  #readerLoops: Promise<void>[] = [];

  constructor(cluster: TestCluster, options: ChaosWorkloadOptions) {
    this.topic = options.topic;
    this.partitions = options.partitions;
    this.router = new Router(cluster, options.topic);
  }

  /** Calls `listener` on every acknowledgement. */
  onAck(listener: (partition: number, node: number, at: number) => void): void {
    this.#ackListeners.push(listener);
  }

  /** Starts a producer and a reader per partition. */
  start(): void {
    const all = Array.from({ length: this.partitions }, (_, p) => p);
    this.#producers = all.map((p) => this.#produceLoop(p));
    this.#readerLoops = all.map((p) => this.#readLoop(p));
  }

  /** Stops the producers (each finishes its value in flight), then the readers. */
  async stop(): Promise<void> {
    this.#stopProducing = true;
    await Promise.all(this.#producers);
    this.#stopReading = true;
    await Promise.all(this.#readerLoops);
  }

  async #produceLoop(partition: number): Promise<void> {
    const { router, produceErrors } = this;
    const user = `producer-${partition}`;
    for (let seq = 0; !this.#stopProducing; seq++) {
      const s: Sent = {
        partition,
        seq,
        value: `p${partition}-${seq}`,
        sentAt: performance.now(),
        attempts: [],
        acked: null,
      };
      this.sent.push(s);
      const batch = encodeRecordBatch([{
        key: null,
        value: encoder.encode(s.value),
        timestampMs: Date.now(),
      }]);
      const giveUpAt = performance.now() + VALUE_GIVE_UP_MS;
      while (s.acked === null && performance.now() < giveUpAt) {
        if (this.#stopProducing && s.attempts.length > 0) break;
        const route = router.leaders.get(partition);
        if (!route) {
          await router.refresh();
          if (!router.leaders.has(partition)) await sleep(RETRY_BACKOFF_MS);
          continue;
        }
        const node = route.leader;
        let conn: KafkaConnection;
        try {
          conn = await router.connection(user, node);
        } catch (err) {
          // Not sent at all.
          s.attempts.push({ kind: "rejected", node, why: `connect: ${(err as Error).name}` });
          count(produceErrors, "connect failed");
          await router.refresh();
          await sleep(RETRY_BACKOFF_MS);
          continue;
        }
        try {
          const res = await withTimeout(
            conn.request(ApiKey.Produce, 9, {
              acks: -1,
              timeoutMs: PRODUCE_TIMEOUT_MS,
              topicData: [{
                name: this.topic,
                partitionData: [{ index: partition, records: batch }],
              }],
            }),
            REPLY_TIMEOUT_MS,
            () => router.drop(user, node),
          );
          const p = res.responses[0]?.partitionResponses[0];
          if (!p) throw new Error("Produce response without the partition");
          const at = performance.now();
          if (p.errorCode === ErrorCode.NONE) {
            s.acked = { node, offset: Number(p.baseOffset), at };
            s.attempts.push({ kind: "acked", ...s.acked });
            for (const listener of this.#ackListeners) listener(partition, node, at);
            break;
          }
          const why = errorName(p.errorCode);
          count(produceErrors, why);
          s.attempts.push({
            kind: NOT_APPENDED.has(p.errorCode) ? "rejected" : "unknown",
            node,
            why,
          });
          if (REFRESH_ON.has(p.errorCode)) await router.refresh();
        } catch (err) {
          const why = err instanceof TimeoutError ? "reply timeout" : "connection lost";
          count(produceErrors, why);
          s.attempts.push({ kind: "unknown", node, why });
          router.drop(user, node);
          await router.refresh();
        }
        await sleep(RETRY_BACKOFF_MS);
      }
      await sleep(SEND_INTERVAL_MS);
    }
  }

  async #readLoop(partition: number): Promise<void> {
    const router = this.router;
    const state: ReaderState = {
      observed: new Map(),
      aboveHw: [],
      changed: [],
      fetches: 0,
      errors: new Map(),
    };
    this.readers.set(partition, state);
    const user = `reader-${partition}`;
    let next = 0;
    while (!this.#stopReading) {
      const route = router.leaders.get(partition);
      if (!route) {
        await router.refresh();
        await sleep(RETRY_BACKOFF_MS);
        continue;
      }
      try {
        const conn = await router.connection(user, route.leader);
        const res = await withTimeout(
          conn.request(ApiKey.Fetch, 11, fetchRequest(this.topic, partition, next, 200, 1 << 20)),
          3000,
          () => router.drop(user, route.leader),
        );
        state.fetches++;
        const p = res.responses[0]?.partitions[0];
        if (!p) throw new Error("Fetch response without the partition");
        if (p.errorCode !== ErrorCode.NONE) {
          count(state.errors, errorName(p.errorCode));
          await router.refresh();
          await sleep(RETRY_BACKOFF_MS);
          continue;
        }
        const { hw, below, above } = splitAtHighWatermark(p, next);
        for (const r of above) {
          state.aboveHw.push(`offset ${r.offset} (${r.value}) from node ${route.leader}, HW ${hw}`);
        }
        for (const r of below) {
          const before = state.observed.get(r.offset);
          if (before !== undefined && before !== r.value) {
            state.changed.push(`offset ${r.offset}: ${before} then ${r.value}`);
          }
          state.observed.set(r.offset, r.value);
        }
        if (below.length > 0) next = below.at(-1)!.offset + 1;
        else if (next >= hw) await sleep(20); // in case the wait is not honoured
      } catch (err) {
        count(state.errors, err instanceof TimeoutError ? "reply timeout" : "connection lost");
        router.drop(user, route.leader);
        await router.refresh();
        await sleep(RETRY_BACKOFF_MS);
      }
    }
  }
}

/** A Fetch v11 request body for one partition from `offset`. */
function fetchRequest(
  topic: string,
  partition: number,
  offset: number,
  maxWaitMs: number,
  maxBytes: number,
) {
  return {
    replicaId: -1,
    maxWaitMs,
    minBytes: maxWaitMs > 0 ? 1 : 0,
    maxBytes,
    isolationLevel: 0,
    topics: [{
      topic,
      partitions: [{ partition, fetchOffset: BigInt(offset), partitionMaxBytes: maxBytes }],
    }],
  };
}

interface LogRecord {
  offset: number;
  value: string;
}

/** The records at or after `from` of a Fetch answer, split at the HW it reports. */
function splitAtHighWatermark(
  p: { highWatermark: bigint; records: Uint8Array | null },
  from: number,
): { hw: number; below: LogRecord[]; above: LogRecord[] } {
  const hw = Number(p.highWatermark);
  const records = decodeRecords(p.records ?? new Uint8Array(0))
    .filter((r) => r.offset >= from)
    .map((r) => ({
      offset: r.offset,
      value: r.value === null ? "<null>" : decoder.decode(r.value),
    }));
  return {
    hw,
    below: records.filter((r) => r.offset < hw),
    above: records.filter((r) => r.offset >= hw),
  };
}

/** The topic as it stands once the faults are over. */
export interface FinalLogs {
  /** partition → every record below its high watermark, from offset 0. */
  logs: Map<number, LogRecord[]>;
  /** Records a final Fetch returned at or above the HW it reported (I4 violations). */
  aboveHw: string[];
  /** value → the offsets it is stored at. */
  occurrences: Map<string, number[]>;
}

/**
 * Every record of `partition` below the high watermark, read from its leader with raw
 * Fetch requests; a leader change while reading (a preferred-leader election, say)
 * re-reads `leaderOf` and continues on the new leader.
 */
async function readToHighWatermark(
  cluster: TestCluster,
  topic: string,
  partition: number,
  leaderOf: (partition: number) => Promise<number>,
  aboveHw: string[],
): Promise<LogRecord[]> {
  const log: LogRecord[] = [];
  const deadline = performance.now() + 30_000;
  let next = 0;
  let lastError = "";
  while (performance.now() < deadline) {
    const leader = await leaderOf(partition).catch(() => -1);
    if (leader < 0) {
      lastError = "no leader";
      await sleep(200);
      continue;
    }
    const conn = await cluster.connect(leader).catch((err: Error) => {
      lastError = `connect to leader ${leader}: ${err.message}`;
      return null;
    });
    if (conn === null) {
      await sleep(200);
      continue;
    }
    try {
      for (;;) {
        const res = await conn.request(
          ApiKey.Fetch,
          11,
          fetchRequest(topic, partition, next, 0, 4 << 20),
        );
        const p = res.responses[0]!.partitions[0]!;
        if (p.errorCode !== ErrorCode.NONE) {
          lastError = `Fetch at ${next} from leader ${leader}: ${errorName(p.errorCode)}`;
          break;
        }
        const { hw, below, above } = splitAtHighWatermark(p, next);
        for (const r of above) {
          aboveHw.push(`p${partition} offset ${r.offset} (${r.value}), HW ${hw}`);
        }
        log.push(...below);
        if (next >= hw) return log;
        assert.ok(
          below.length > 0,
          `Fetch ${topic}-${partition} at ${next} < HW ${hw} from ${leader} returned no records`,
        );
        next = below.at(-1)!.offset + 1;
      }
    } catch (err) {
      lastError = `Fetch at ${next} from leader ${leader}: ${(err as Error).message}`;
    } finally {
      await conn.close();
    }
    await sleep(200);
  }
  throw new Error(`Cannot read ${topic}-${partition} to its high watermark: ${lastError}`);
}

/** Reads every partition of the workload's topic back from its leader (`leaderOf`). */
export async function readBack(
  cluster: TestCluster,
  workload: ChaosWorkload,
  leaderOf: (partition: number) => Promise<number>,
): Promise<FinalLogs> {
  const final: FinalLogs = { logs: new Map(), aboveHw: [], occurrences: new Map() };
  for (let partition = 0; partition < workload.partitions; partition++) {
    const log = await readToHighWatermark(
      cluster,
      workload.topic,
      partition,
      leaderOf,
      final.aboveHw,
    );
    final.logs.set(partition, log);
    for (const r of log) {
      const list = final.occurrences.get(r.value) ?? [];
      list.push(r.offset);
      final.occurrences.set(r.value, list);
    }
  }
  return final;
}

const uncertain = (s: Sent) => s.attempts.some((a) => a.kind === "unknown");

/** The fate of some values (the whole run, or those sent during one fault). */
export interface Verdict {
  sent: number;
  acked: number;
  /** Acknowledged values not at their acknowledged offset at the end (I1 violations). */
  lost: string[];
  /** Values stored more than once with no attempt of unknown outcome (I1 violations). */
  duplicated: string[];
  /** Values stored more than once after an attempt of unknown outcome (allowed). */
  retriedTwice: number;
  /** Values stored though never acknowledged (allowed: their outcome was unknown). */
  storedUnacked: number;
  givenUp: number;
}

/** What became of `values`, judged by the final logs. */
export function verdict(values: Sent[], final: FinalLogs, started: number): Verdict {
  const stored = (s: Sent) => final.occurrences.get(s.value) ?? [];
  return {
    sent: values.length,
    acked: values.filter((s) => s.acked !== null).length,
    lost: values.filter((s) =>
      s.acked !== null && final.logs.get(s.partition)?.[s.acked.offset]?.value !== s.value
    ).map((s) =>
      `${s.value} (acked at offset ${s.acked!.offset} by node ${s.acked!.node} ` +
      `${((s.acked!.at - started) / 1000).toFixed(2)} s; found at ${
        JSON.stringify(stored(s))
      }; offset holds ${final.logs.get(s.partition)?.[s.acked!.offset]?.value ?? "nothing"})`
    ),
    duplicated: values.filter((s) => !uncertain(s) && stored(s).length > 1)
      .map((s) => `${s.value} at ${JSON.stringify(stored(s))}: ${JSON.stringify(s.attempts)}`),
    retriedTwice: values.filter((s) => uncertain(s) && stored(s).length > 1).length,
    storedUnacked: values.filter((s) => s.acked === null && stored(s).length > 0).length,
    givenUp: values.filter((s) => s.acked === null).length,
  };
}

/** The verdict as one line: acked, lost, duplicated. */
export function verdictLine(v: Verdict): string {
  return `${v.sent} sent, ${v.acked} acked, ${v.lost.length} lost, ${v.duplicated.length} ` +
    `duplicated (+${v.retriedTwice} stored twice after an uncertain attempt, ` +
    `${v.storedUnacked} stored unacknowledged), ${v.givenUp} given up or unfinished`;
}

/**
 * The I1 and I4 checks as test steps: contiguous logs of our values only, no acknowledged
 * value lost, no duplicate without an uncertain attempt, producer order, nothing at or
 * above the HW, and what readers saw still there.
 */
export async function checkInvariants(
  t: Deno.TestContext,
  workload: ChaosWorkload,
  final: FinalLogs,
  started: number,
): Promise<void> {
  const { sent, readers } = workload;
  const v = verdict(sent, final, started);
  await t.step(
    "every partition's log is contiguous from offset 0 and holds only our values",
    () => {
      const known = new Set(sent.map((s) => s.value));
      for (const [partition, log] of final.logs) {
        log.forEach((r, i) =>
          assert.equal(r.offset, i, `p${partition}: offsets contiguous from 0`)
        );
        const foreign = log.filter((r) =>
          !known.has(r.value) || !r.value.startsWith(`p${partition}-`)
        );
        assert.deepEqual(foreign, [], `p${partition}: records nobody produced there`);
      }
    },
  );

  await t.step("I1: every acknowledged value is present at its acknowledged offset", () => {
    assert.deepEqual(v.lost.slice(0, 20), [], `${v.lost.length} acknowledged values lost or moved`);
  });

  await t.step(
    "I1: no value is written twice unless an attempt of it had an unknown outcome",
    () => {
      assert.deepEqual(v.duplicated.slice(0, 20), [], `${v.duplicated.length} duplicated values`);
    },
  );

  await t.step("I1: per partition, values appear in the producer's order", () => {
    for (const [partition, log] of final.logs) {
      // Acknowledgement offsets grow with the sequence (n+1 is sent after n's ack).
      const ackedHere = sent.filter((s) => s.partition === partition && s.acked !== null);
      for (let i = 1; i < ackedHere.length; i++) {
        assert.ok(
          ackedHere[i]!.acked!.offset > ackedHere[i - 1]!.acked!.offset,
          `p${partition}: ${ackedHere[i]!.value} acked at ${ackedHere[i]!.acked!.offset}, ` +
            `after ${ackedHere[i - 1]!.value} at ${ackedHere[i - 1]!.acked!.offset}`,
        );
      }
      // Among values with no uncertain attempt, the log order is the sequence order.
      const certain = new Set(
        sent.filter((s) => s.partition === partition && !uncertain(s)).map((s) => s.value),
      );
      let lastSeq = -1;
      for (const r of log) {
        if (!certain.has(r.value)) continue;
        const seq = Number(r.value.slice(r.value.indexOf("-") + 1));
        assert.ok(
          seq > lastSeq,
          `p${partition}: ${r.value} at offset ${r.offset} after seq ${lastSeq}`,
        );
        lastSeq = seq;
      }
    }
  });

  await t.step("I4: no Fetch returned a record at or above the high watermark it reported", () => {
    const during = [...readers].flatMap(([p, s]) => s.aboveHw.map((x) => `p${p} ${x}`));
    assert.deepEqual([...during, ...final.aboveHw].slice(0, 20), []);
  });

  await t.step("I4: what readers saw below the high watermark is still there, unchanged", () => {
    const bad: string[] = [];
    for (const [partition, state] of readers) {
      const log = final.logs.get(partition) ?? [];
      for (const c of state.changed) bad.push(`p${partition} ${c}`);
      for (const [offset, value] of state.observed) {
        if (log[offset]?.value !== value) {
          bad.push(
            `p${partition} offset ${offset}: read ${value}, finally ${
              log[offset]?.value ?? "nothing"
            }`,
          );
        }
      }
    }
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} observations contradicted`);
  });
}

/** Prints the run's figures: values and attempts, produce errors, each reader's counts. */
export function reportRun(workload: ChaosWorkload, final: FinalLogs, report: Reporter): void {
  const { sent } = workload;
  const v = verdict(sent, final, report.started);
  const firstTry = sent.filter((s) => s.acked !== null && s.attempts.length === 1).length;
  const attempts = sent.reduce((n, s) => n + s.attempts.length, 0);
  report.say(
    `values: ${verdictLine(v)}; ${firstTry} acked at the first attempt, ${attempts} attempts, ` +
      `${sent.filter(uncertain).length} values had an attempt with an unknown outcome`,
  );
  report.say(
    `produce errors: ${
      JSON.stringify(Object.fromEntries(workload.produceErrors))
    }; metadata refreshes: ${workload.router.refreshes}`,
  );
  for (const [p, s] of workload.readers) {
    report.say(
      `reader p${p}: ${s.fetches} fetches, ${s.observed.size} records seen, errors ${
        JSON.stringify(Object.fromEntries(s.errors))
      }`,
    );
  }
}
