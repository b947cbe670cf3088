/**
 * 3-node cluster benchmark (DESIGN §12): three real node processes on loopback (the test
 * harness's TestCluster), topics with replication factor 3 and min.insync.replicas=2, every
 * produce at acks=all, load from our own pipelined protocol client on the same machine.
 *
 * Figures:
 * - throughput with 1 KiB records in ~64 KiB batches, one partition per node, several
 *   connections per leader with several requests in flight on each (MB/s, records/s,
 *   closed-loop p50/p99 request latency);
 * - produce latency p50/p99/p999 at half that load, open loop (each request timed from
 *   when it was due, so a stall counts against every request it delays);
 * - failover: kill -9 of the leader → first acks=all produce acknowledged by the new
 *   leader, under a steady producer, median and max over several kills; after each kill
 *   the node is restarted and the time until it is back in the ISR is reported too.
 * Throughputs are also given as ratios to the raw loopback-TCP and append+fsync rates
 * measured first in the same run.
 *
 * Run: deno run -A tests/bench/cluster_bench.ts [--seconds N] [--kills N] [--flush POLICY]
 */
import { parseArgs } from "node:util";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, encodeRecordBatch, ErrorCode, errorName } from "../../lib/protocol/mod.ts";
import { TestCluster } from "../_helpers/cluster.ts";
import { buildSizedBatch } from "../unit/log/_batches.ts";
import { appendFsyncMBps, loopbackTcpMBps } from "./baselines.ts";
import { quantile, report } from "./_report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    kills: { type: "string", default: "5" },
    flush: { type: "string", default: "always" },
  },
});
const SECONDS = Number(values.seconds);
const KILLS = Number(values.kills);
const PARTITIONS = 3;
const CONNECTIONS_PER_LEADER = 2;
const IN_FLIGHT = 4;
const RECORDS_PER_BATCH = 64;
const MIN_INSYNC = { "min.insync.replicas": "2" };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function note(message: string): void {
  // deno-lint-ignore no-console -- progress and per-kill figures for the person running it
  console.error(`cluster_bench: ${message}`);
}

/** partition → leader of `topic`, as node `via` sees it. */
async function leaders(cluster: TestCluster, topic: string, via = 1): Promise<Map<number, number>> {
  const md = await cluster.metadata(via, [topic]);
  const t = md.topics.find((x) => x.name === topic);
  return new Map((t?.partitions ?? []).map((p) => [p.partitionIndex, p.leaderId]));
}

function produceRequest(topic: string, partition: number, batch: Uint8Array) {
  return {
    acks: -1,
    timeoutMs: 30_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }],
  };
}

async function produceChecked(
  conn: KafkaConnection,
  topic: string,
  partition: number,
  batch: Uint8Array,
): Promise<void> {
  const res = await conn.request(ApiKey.Produce, 9, produceRequest(topic, partition, batch));
  const code = res.responses[0]?.partitionResponses[0]?.errorCode;
  if (code !== ErrorCode.NONE) {
    throw new Error(`Produce to ${topic}-${partition} failed: ${errorName(code ?? -1)}`);
  }
}

/** One connection set per partition, to its leader. */
async function connectToLeaders(
  cluster: TestCluster,
  topic: string,
): Promise<{ partition: number; conn: KafkaConnection }[]> {
  const byPartition = await leaders(cluster, topic);
  const out: { partition: number; conn: KafkaConnection }[] = [];
  for (const [partition, leader] of byPartition) {
    if (leader < 0) throw new Error(`${topic}-${partition} has no leader`);
    for (let i = 0; i < CONNECTIONS_PER_LEADER; i++) {
      out.push({ partition, conn: await cluster.connect(leader) });
    }
  }
  return out;
}

/** Closed loop: IN_FLIGHT requests outstanding on each connection for `seconds`. */
async function saturate(
  cluster: TestCluster,
  topic: string,
  batch: Uint8Array,
  seconds: number,
): Promise<{ batches: number; seconds: number; latenciesMs: number[] }> {
  const conns = await connectToLeaders(cluster, topic);
  const latenciesMs: number[] = [];
  let batches = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async ({ partition, conn }: { partition: number; conn: KafkaConnection }) => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await produceChecked(conn, topic, partition, batch);
      latenciesMs.push(performance.now() - t0);
      batches++;
    }
  };
  await Promise.all(conns.flatMap((c) => Array.from({ length: IN_FLIGHT }, () => worker(c))));
  const elapsed = (performance.now() - start) / 1000;
  await Promise.all(conns.map((c) => c.conn.close()));
  return { batches, seconds: elapsed, latenciesMs };
}

/**
 * Open loop at `batchesPerSecond`: request i is due at start + i / rate and goes out on the
 * next connection in turn; its latency runs from when it was due to its acknowledgement.
 */
async function paced(
  cluster: TestCluster,
  topic: string,
  batch: Uint8Array,
  batchesPerSecond: number,
  seconds: number,
): Promise<{ batches: number; seconds: number; latenciesMs: number[]; maxOutstanding: number }> {
  const conns = await connectToLeaders(cluster, topic);
  const latenciesMs: number[] = [];
  const pending = new Set<Promise<void>>();
  let maxOutstanding = 0;
  const start = performance.now();
  const total = Math.max(1, Math.floor(batchesPerSecond * seconds));
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / batchesPerSecond;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const { partition, conn } = conns[i % conns.length]!;
    const p = produceChecked(conn, topic, partition, batch).then(() => {
      latenciesMs.push(performance.now() - due);
      pending.delete(p);
    });
    pending.add(p);
    maxOutstanding = Math.max(maxOutstanding, pending.size);
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  await Promise.all(conns.map((c) => c.conn.close()));
  return { batches: total, seconds: elapsed, latenciesMs, maxOutstanding };
}

/**
 * A steady acks=all producer on one partition with client-style routing: Metadata from
 * any node that answers, the leader's connection kept open, metadata re-read after any
 * error. Remembers when each acknowledgement came and from which node.
 */
class SteadyProducer {
  readonly acks: { at: number; node: number }[] = [];
  readonly errors = new Map<string, number>();
  readonly #cluster: TestCluster;
  readonly #topic: string;
  readonly #conns = new Map<number, KafkaConnection>();
  #leader = -1;
  #stopped = false;
  readonly #loop: Promise<void>;

  constructor(cluster: TestCluster, topic: string) {
    this.#cluster = cluster;
    this.#topic = topic;
    this.#loop = this.#run();
  }

  #error(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }

  async #conn(node: number): Promise<KafkaConnection> {
    let conn = this.#conns.get(node);
    if (!conn) {
      conn = await KafkaConnection.connect("127.0.0.1", this.#cluster.node(node).kafkaPort);
      const made = conn;
      this.#conns.set(node, made);
      made.closed.finally(() => {
        if (this.#conns.get(node) === made) this.#conns.delete(node);
      });
    }
    return conn;
  }

  #drop(node: number): void {
    const conn = this.#conns.get(node);
    this.#conns.delete(node);
    conn?.close().catch(() => {});
  }

  async #refresh(): Promise<void> {
    for (const { id } of this.#cluster.nodes) {
      try {
        const conn = await this.#conn(id);
        const md = await conn.request(ApiKey.Metadata, 12, { topics: [{ name: this.#topic }] });
        const leader = md.topics[0]?.partitions.find((p) => p.partitionIndex === 0)?.leaderId;
        if (leader === undefined || leader < 0) continue;
        this.#leader = leader;
        return;
      } catch {
        this.#drop(id);
      }
    }
    this.#leader = -1;
  }

  async #run(): Promise<void> {
    let seq = 0;
    while (!this.#stopped) {
      if (this.#leader < 0) await this.#refresh();
      const node = this.#leader;
      if (node < 0) {
        await sleep(10);
        continue;
      }
      const batch = encodeRecordBatch([{
        key: null,
        value: new TextEncoder().encode(`steady-${seq++}`),
        timestampMs: Date.now(),
      }]);
      try {
        const conn = await this.#conn(node);
        const res = await conn.request(ApiKey.Produce, 9, produceRequest(this.#topic, 0, batch));
        const code = res.responses[0]?.partitionResponses[0]?.errorCode ?? -1;
        if (code === ErrorCode.NONE) {
          this.acks.push({ at: performance.now(), node });
          await sleep(5);
          continue;
        }
        this.#error(errorName(code));
      } catch {
        this.#error("connection");
        this.#drop(node);
      }
      this.#leader = -1;
      await sleep(10);
    }
  }

  /** Resolves with the first acknowledgement at or after `since` from a node other than `not`. */
  async firstAckAfter(since: number, not: number, timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const ack = this.acks.find((a) => a.at >= since && a.node !== not);
      if (ack) return ack.at;
      if (performance.now() > deadline) {
        throw new Error(
          `No acknowledgement from a node other than ${not} within ${timeoutMs} ms ` +
            `(errors ${JSON.stringify(Object.fromEntries(this.errors))})`,
        );
      }
      await sleep(2);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    for (const node of [...this.#conns.keys()]) this.#drop(node);
  }
}

async function failovers(cluster: TestCluster): Promise<void> {
  const topic = "bench-failover";
  await cluster.createTopic(topic, 1, 3, MIN_INSYNC);
  const producer = new SteadyProducer(cluster, topic);
  const failoverMs: number[] = [];
  const rejoinMs: number[] = [];
  try {
    for (let kill = 1; kill <= KILLS; kill++) {
      const state = await cluster.waitFor("a leader and a full ISR", async () => {
        const s = await cluster.leaderOf(topic, 0);
        return s.leader >= 0 && s.isr.length === 3 && s;
      }, 30_000);
      await producer.firstAckAfter(performance.now(), -1, 30_000); // the producer is flowing
      const victim = state.leader;
      const killedAt = performance.now();
      await cluster.kill(victim);
      const ackAt = await producer.firstAckAfter(killedAt, victim, 30_000);
      failoverMs.push(ackAt - killedAt);
      const restartAt = performance.now();
      await cluster.restart(victim);
      await cluster.waitFor(
        `node ${victim} back in the ISR`,
        async () => {
          const survivor = cluster.nodes.find((n) => n.id !== victim)!.id;
          return (await cluster.leaderOf(topic, 0, survivor)).isr.includes(victim);
        },
        60_000,
        20,
      );
      rejoinMs.push(performance.now() - restartAt);
      note(
        `kill ${kill}: leader ${victim} (epoch ${state.leaderEpoch}) replaced in ` +
          `${failoverMs.at(-1)!.toFixed(0)} ms; back in the ISR ${
            rejoinMs.at(-1)!.toFixed(0)
          } ms ` +
          `after its restart began`,
      );
    }
  } finally {
    await producer.stop();
  }
  note(`steady producer errors: ${JSON.stringify(Object.fromEntries(producer.errors))}`);
  report("failover_kill9_to_ack_p50_ms", quantile(failoverMs, 0.5), "ms");
  report("failover_kill9_to_ack_max_ms", Math.max(...failoverMs), "ms");
  report("failover_restart_to_isr_p50_ms", quantile(rejoinMs, 0.5), "ms");
  report("failover_restart_to_isr_max_ms", Math.max(...rejoinMs), "ms");
}

const tcp = { name: "loopback_tcp_MBps", value: await loopbackTcpMBps() };
report(tcp.name, tcp.value, "MB/s");
const disk = { name: "append_fsync_MBps", value: await appendFsyncMBps() };
report(disk.name, disk.value, "MB/s");

const cluster = await TestCluster.start({
  size: 3,
  args: ["--log-level", "warning", "--flush", values.flush],
});
try {
  await cluster.createTopic("bench-acksall", PARTITIONS, 3, MIN_INSYNC);
  await cluster.waitFor("a full ISR on every partition", async () => {
    const md = await cluster.metadata(1, ["bench-acksall"]);
    return md.topics[0]?.partitions.every((p) => p.isrNodes.length === 3);
  });
  const batch = buildSizedBatch(RECORDS_PER_BATCH, 1000); // ~66 KiB
  const full = await saturate(cluster, "bench-acksall", batch, SECONDS);
  const mbps = (full.batches * batch.length) / 1e6 / full.seconds;
  report("cluster_produce_1KiB_acksall_MBps", mbps, "MB/s", disk);
  report("cluster_produce_1KiB_acksall_MBps_vs_tcp", mbps, "MB/s", tcp);
  report(
    "cluster_produce_1KiB_acksall_records_per_s",
    (full.batches * RECORDS_PER_BATCH) / full.seconds,
    "records/s",
  );
  report("cluster_produce_1KiB_acksall_p50_ms", quantile(full.latenciesMs, 0.5), "ms");
  report("cluster_produce_1KiB_acksall_p99_ms", quantile(full.latenciesMs, 0.99), "ms");

  const rate = full.batches / full.seconds / 2;
  const half = await paced(cluster, "bench-acksall", batch, rate, SECONDS);
  report(
    "cluster_produce_half_load_MBps",
    (half.batches * batch.length) / 1e6 / half.seconds,
    "MB/s",
    disk,
  );
  report("cluster_produce_half_load_p50_ms", quantile(half.latenciesMs, 0.5), "ms");
  report("cluster_produce_half_load_p99_ms", quantile(half.latenciesMs, 0.99), "ms");
  report("cluster_produce_half_load_p999_ms", quantile(half.latenciesMs, 0.999), "ms");
  note(`half load: ${rate.toFixed(0)} batches/s, at most ${half.maxOutstanding} outstanding`);

  await failovers(cluster);
} finally {
  await cluster.close();
}
