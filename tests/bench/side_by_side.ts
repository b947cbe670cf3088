/**
 * Tidelog beside Apache Kafka 4.1 in one run, with one external load generator
 * (librdkafka's `rdkafka_performance`, see `_rdkafka.ts`), and that generator's own
 * ceiling (the same tool against librdkafka's in-process mock broker). Each broker runs
 * alone on the machine while it is measured (2 cores), started fresh: Tidelog with its
 * defaults (it fsyncs before it acknowledges), Kafka with its defaults (it does not) and
 * its own 1 GiB heap.
 *
 * Rows (one JSON line each; `ratio` is against the named baseline):
 * - the machine: loopback TCP and append+fsync MB/s; the generator's ceiling (1 KiB, 100 B);
 * - 1 node, produce acks=1, 1 KiB records, 4 partitions: MB/s, against Kafka and the ceiling;
 *   the broker's peak RSS over that run;
 * - 1 node, consume all of it from the start (2 GB by default): MB/s;
 * - 1 node, 100-byte records: records/s;
 * - 3 nodes, acks=all, RF 3, min.insync.replicas 2: MB/s; then latency p50/p99 at half of
 *   that broker's own peak rate, and at 20,000 records/s for both (linger.ms=1);
 * - 1,000 and 10,000 partitions on one node: topic creation time, produce MB/s, peak RSS,
 *   and start-up time after a clean shutdown (until every partition has a leader).
 *
 * Run: deno run -A tests/bench/side_by_side.ts [--scale F] [--only tidelog|kafka]
 *      [--skip-scale]   (--scale 0.1 runs a tenth of the records, for a quick look)
 */
import { parseArgs } from "node:util";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { TestCluster } from "../_helpers/cluster.ts";
import { KafkaReference } from "../_helpers/kafka_reference.ts";
import { appendFsyncMBps, loopbackTcpMBps } from "./baselines.ts";
import {
  ensureRdkafkaPerformance,
  type ProduceFigures,
  rdkafkaConsume,
  rdkafkaProduce,
} from "./_rdkafka.ts";
import { report } from "./_report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    scale: { type: "string", default: "1" },
    only: { type: "string" },
    "skip-scale": { type: "boolean", default: false },
    markdown: { type: "string" },
  },
});
const SCALE = Number(values.scale);
const n = (count: number) => Math.max(1000, Math.round(count * SCALE));
const RECORDS_1K = n(2_000_000);
const RECORDS_100 = n(10_000_000);
const RECORDS_3 = n(1_500_000);
const RECORDS_SCALE = n(500_000);
const PARTITIONS = 4;
const LATENCY_SECONDS = 8;
/** Records/s of the latency run both brokers get (1 KiB: 20 MB/s). */
const LATENCY_FIXED_RATE = 20_000;
/** Kafka's own broker JVM settings (kafka-server-start.sh's 1 GiB heap). */
const KAFKA_JVM = ["-Xms1g", "-Xmx1g", "-XX:+UseParallelGC"];

function note(message: string): void {
  // deno-lint-ignore no-console -- progress for the person running it
  console.error(`side_by_side: ${message}`);
}

/** A broker cluster under test, whichever implementation. */
interface Brokers extends AsyncDisposable {
  readonly bootstrap: string;
  /** Process ids of the nodes' processes. */
  pids(): number[];
  /** Clean shutdown of every node, then start again; resolves when they answer. */
  restart(): Promise<void>;
}

/** Tidelog's own defaults, over the test harness's quicker fencing and ISR timings. */
const TIDELOG_DEFAULTS = [
  "--broker-session-timeout-ms",
  "1500",
  "--replica-lag-time-max-ms",
  "5000",
];

async function startTidelog(size: 1 | 3): Promise<Brokers> {
  const cluster = await TestCluster.start({ size, args: TIDELOG_DEFAULTS });
  await cluster.waitForBrokers(size);
  return {
    bootstrap: cluster.bootstrap(),
    pids: () => cluster.nodes.map((node) => node.process!.pid),
    restart: async () => {
      for (const node of cluster.nodes) await cluster.restart(node.id);
      await cluster.waitForBrokers(size, 600_000);
    },
    [Symbol.asyncDispose]: () => cluster.close(),
  };
}

async function startKafka(size: 1 | 3): Promise<Brokers> {
  const kafka = await KafkaReference.start({ size, jvmArgs: KAFKA_JVM });
  return {
    bootstrap: kafka.bootstrap,
    pids: () => kafka.nodes.map((node) => kafka.pid(node.id)),
    restart: () => kafka.restart(),
    [Symbol.asyncDispose]: () => kafka[Symbol.asyncDispose](),
  };
}

/** The peak resident set (VmHWM) of a process so far, in MB. */
async function peakRssMB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? NaN);
  return kb / 1024;
}

async function withConnection<T>(bootstrap: string, fn: (c: KafkaConnection) => Promise<T>) {
  const [host, port] = bootstrap.split(",")[0]!.split(":");
  const conn = await KafkaConnection.connect(host!, Number(port), "side-by-side", {
    timeoutMs: 600_000,
  });
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

/**
 * Kafka's controller refuses an operation of more than 10,000 records (a topic and its
 * partitions are one record each), so large topics are created, on both brokers alike, in
 * steps of this many partitions: CreateTopics, then CreatePartitions.
 */
const PARTITIONS_PER_REQUEST = 5000;

/** Sends one admin request, retrying while the node answers NOT_CONTROLLER. */
async function adminRequest(
  b: Brokers,
  what: string,
  send: (c: KafkaConnection) => Promise<number>,
) {
  await withConnection(b.bootstrap, async (conn) => {
    for (;;) {
      const code = await send(conn);
      if (code === ErrorCode.NONE) return;
      if (code !== ErrorCode.NOT_CONTROLLER) throw new Error(`${what}: error code ${code}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
}

/** Creates a topic through the controller and waits until every partition has a leader. */
async function createTopic(
  b: Brokers,
  name: string,
  partitions: number,
  rf: number,
  minIsr = 1,
): Promise<number> {
  const started = performance.now();
  let count = Math.min(partitions, PARTITIONS_PER_REQUEST);
  await adminRequest(b, `CreateTopics ${name}`, async (conn) => {
    const r = await conn.request(ApiKey.CreateTopics, 4, {
      topics: [{
        name,
        numPartitions: count,
        replicationFactor: rf,
        assignments: [],
        configs: [{ name: "min.insync.replicas", value: String(minIsr) }],
      }],
      timeoutMs: 600_000,
      validateOnly: false,
    });
    return r.topics[0]!.errorCode;
  });
  while (count < partitions) {
    await waitForLeaders(b, name, count);
    count = Math.min(partitions, count + PARTITIONS_PER_REQUEST);
    await adminRequest(b, `CreatePartitions ${name} to ${count}`, async (conn) => {
      const r = await conn.request(ApiKey.CreatePartitions, 1, {
        topics: [{ name, count, assignments: null }],
        timeoutMs: 600_000,
        validateOnly: false,
      });
      return r.results[0]!.errorCode;
    });
  }
  await waitForLeaders(b, name, partitions);
  return performance.now() - started;
}

/** Waits until Metadata names a leader for each of the topic's `partitions` partitions. */
async function waitForLeaders(b: Brokers, topic: string, partitions: number): Promise<void> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      const led = await withConnection(b.bootstrap, async (conn) => {
        const md = await conn.request(ApiKey.Metadata, 12, {
          topics: [{ name: topic, topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
          allowAutoTopicCreation: false,
          includeTopicAuthorizedOperations: false,
        });
        const t = md.topics[0];
        if (!t || t.errorCode !== ErrorCode.NONE) return 0;
        return t.partitions.filter((p) => p.errorCode === ErrorCode.NONE && p.leaderId >= 0)
          .length;
      });
      if (led === partitions) return;
    } catch { /* not serving yet */ }
    if (Date.now() > deadline) throw new Error(`${topic}: not every partition has a leader`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface OneNode {
  produce: ProduceFigures;
  rssMB: number;
  consumeMBps: number;
  small: ProduceFigures;
}

interface ThreeNodes {
  peak: ProduceFigures;
  /** At half of this broker's own peak rate. */
  latency: ProduceFigures;
  /** At the same fixed rate for both brokers. */
  latencyFixed: ProduceFigures;
}

interface Scale {
  partitions: number;
  createMs: number;
  produce: ProduceFigures;
  rssMB: number;
  restartMs: number;
}

interface Figures {
  one: OneNode;
  three: ThreeNodes;
  scale: (Scale | undefined)[];
}

async function oneNode(rdk: string, start: () => Promise<Brokers>): Promise<OneNode> {
  await using b = await start();
  await createTopic(b, "bench1", PARTITIONS, 1);
  const produce = await rdkafkaProduce(rdk, {
    bootstrap: b.bootstrap,
    topic: "bench1",
    recordSize: 1024,
    records: RECORDS_1K,
    acks: 1,
  });
  const rssMB = await peakRssMB(b.pids()[0]!);
  const consumed = await rdkafkaConsume(rdk, {
    bootstrap: b.bootstrap,
    topic: "bench1",
    partitions: PARTITIONS,
    records: RECORDS_1K,
  });
  await createTopic(b, "small1", PARTITIONS, 1);
  const small = await rdkafkaProduce(rdk, {
    bootstrap: b.bootstrap,
    topic: "small1",
    recordSize: 100,
    records: RECORDS_100,
    acks: 1,
  });
  return { produce, rssMB, consumeMBps: consumed.mbPerSec, small };
}

/**
 * The fixed-rate latency run comes first, on the fresh cluster (after a 1.5 GB burst the
 * disk is still busy for a while, which a broker that fsyncs feels more); then the peak;
 * then latency at half of that peak.
 */
async function threeNodes(rdk: string, start: () => Promise<Brokers>): Promise<ThreeNodes> {
  await using b = await start();
  await createTopic(b, "bench3", PARTITIONS, 3, 2);
  const latencyAt = (rate: number) =>
    rdkafkaProduce(rdk, {
      bootstrap: b.bootstrap,
      topic: "bench3",
      recordSize: 1024,
      records: rate * LATENCY_SECONDS,
      acks: -1,
      rate,
      lingerMs: 1,
      latency: true,
    });
  const latencyFixed = await latencyAt(LATENCY_FIXED_RATE);
  const peak = await rdkafkaProduce(rdk, {
    bootstrap: b.bootstrap,
    topic: "bench3",
    recordSize: 1024,
    records: RECORDS_3,
    acks: -1,
  });
  const latency = await latencyAt(Math.max(1, Math.floor(peak.recordsPerSec / 2)));
  return { peak, latency, latencyFixed };
}

async function scale(
  rdk: string,
  start: () => Promise<Brokers>,
  partitions: number,
): Promise<Scale> {
  await using b = await start();
  const createMs = await createTopic(b, "many", partitions, 1);
  const produce = await rdkafkaProduce(rdk, {
    bootstrap: b.bootstrap,
    topic: "many",
    recordSize: 1024,
    records: RECORDS_SCALE,
    acks: 1,
  });
  const rssMB = await peakRssMB(b.pids()[0]!);
  const began = performance.now();
  await b.restart();
  await waitForLeaders(b, "many", partitions);
  return { partitions, createMs, produce, rssMB, restartMs: performance.now() - began };
}

async function measure(
  name: string,
  rdk: string,
  start: (size: 1 | 3) => Promise<Brokers>,
): Promise<Figures> {
  note(`${name}: 1 node`);
  const one = await oneNode(rdk, () => start(1));
  note(`${name}: 3 nodes`);
  const three = await threeNodes(rdk, () => start(3));
  const scales: (Scale | undefined)[] = [];
  if (!values["skip-scale"]) {
    for (const partitions of [1000, 10_000]) {
      note(`${name}: ${partitions} partitions`);
      try {
        scales.push(await scale(rdk, () => start(1), partitions));
      } catch (err) {
        // A broker that cannot take this many partitions here still gets its other rows.
        note(`${name}: ${partitions} partitions failed: ${(err as Error).message}`);
        scales.push(undefined);
      }
    }
  }
  return { one, three, scale: scales };
}

const rdk = await ensureRdkafkaPerformance();
note("the machine and the generator's ceiling");
const tcp = await loopbackTcpMBps();
const disk = await appendFsyncMBps();
const ceiling = await rdkafkaProduce(rdk, {
  bootstrap: null,
  topic: "ceiling",
  recordSize: 1024,
  records: RECORDS_1K,
  acks: 1,
});
const ceilingSmall = await rdkafkaProduce(rdk, {
  bootstrap: null,
  topic: "ceiling",
  recordSize: 100,
  records: RECORDS_100,
  acks: 1,
});
const tidelog = values.only === "kafka" ? null : await measure("tidelog", rdk, startTidelog);
const kafka = values.only === "tidelog" ? null : await measure("kafka", rdk, startKafka);

report("machine loopback TCP (1 MiB frames)", tcp, "MB/s");
report("machine append + fdatasync per MiB", disk, "MB/s");
const ceilingName = `rdkafka_performance ceiling (mock broker), 1 KiB x ${RECORDS_1K}`;
report(ceilingName, ceiling.mbPerSec, "MB/s");
const ceilingSmallName = `rdkafka_performance ceiling (mock broker), 100 B x ${RECORDS_100}`;
report(ceilingSmallName, ceilingSmall.recordsPerSec, "records/s");

/** One figure of each broker: Tidelog against Kafka, and against the ceiling if given. */
/** The same rows as a Markdown table, for the README (`--markdown FILE`). */
const table: string[] = [
  "| figure | Tidelog | Kafka 4.1 | unit | Tidelog / Kafka | Tidelog / ceiling |",
  "|---|---:|---:|---|---:|---:|",
];
const fmt = (v: number | undefined) =>
  v === undefined
    ? ""
    : v >= 1000
    ? Math.round(v).toLocaleString("en-US")
    : String(Math.round(v * 100) / 100);

function row(
  figure: string,
  unit: string,
  pick: (f: Figures) => number | undefined,
  against?: { name: string; value: number },
) {
  const t = tidelog ? pick(tidelog) : undefined;
  const k = kafka ? pick(kafka) : undefined;
  if (k !== undefined) report(`kafka ${figure}`, k, unit, against);
  table.push(
    `| ${figure} | ${fmt(t)} | ${fmt(k)} | ${unit} | ${
      t !== undefined && k !== undefined ? (t / k).toFixed(2) : ""
    } | ${t !== undefined && against ? (t / against.value).toFixed(2) : ""} |`,
  );
  if (t !== undefined) {
    report(
      `tidelog ${figure}`,
      t,
      unit,
      k !== undefined ? { name: `kafka ${figure}`, value: k } : against,
    );
    if (against && k !== undefined) report(`tidelog ${figure}`, t, unit, against);
  }
}

const ceil = { name: ceilingName, value: ceiling.mbPerSec };
const ceilSmall = { name: ceilingSmallName, value: ceilingSmall.recordsPerSec };
row(
  `1 node produce acks=1, 1 KiB x ${RECORDS_1K}, ${PARTITIONS} partitions`,
  "MB/s",
  (f) => f.one.produce.mbPerSec,
  ceil,
);
row(`1 node peak RSS over that produce run`, "MB", (f) => f.one.rssMB);
row(`1 node consume from the start (${RECORDS_1K} x 1 KiB)`, "MB/s", (f) => f.one.consumeMBps);
row(
  `1 node produce acks=1, 100 B x ${RECORDS_100}`,
  "records/s",
  (f) => f.one.small.recordsPerSec,
  ceilSmall,
);
row(
  `3 nodes produce acks=all RF 3 min.insync 2, 1 KiB x ${RECORDS_3}`,
  "MB/s",
  (f) => f.three.peak.mbPerSec,
  ceil,
);
row(
  `3 nodes acks=all latency p50 at half of own peak (linger.ms=1)`,
  "ms",
  (f) => f.three.latency.p50Ms,
);
row(
  `3 nodes acks=all latency p99 at half of own peak (linger.ms=1)`,
  "ms",
  (f) => f.three.latency.p99Ms,
);
row(
  `3 nodes acks=all rate reached in that run`,
  "records/s",
  (f) => f.three.latency.recordsPerSec,
);
row(
  `3 nodes acks=all latency p50 at ${LATENCY_FIXED_RATE} records/s (linger.ms=1)`,
  "ms",
  (f) => f.three.latencyFixed.p50Ms,
);
row(
  `3 nodes acks=all latency p99 at ${LATENCY_FIXED_RATE} records/s (linger.ms=1)`,
  "ms",
  (f) => f.three.latencyFixed.p99Ms,
);
for (const [i, partitions] of [1000, 10_000].entries()) {
  const s = (f: Figures) => f.scale[i];
  row(`${partitions} partitions: create topic`, "ms", (f) => s(f)?.createMs);
  row(
    `${partitions} partitions: produce acks=1, 1 KiB x ${RECORDS_SCALE}`,
    "MB/s",
    (f) => s(f)?.produce.mbPerSec,
  );
  row(`${partitions} partitions: peak RSS`, "MB", (f) => s(f)?.rssMB);
  row(`${partitions} partitions: start-up after a clean shutdown`, "ms", (f) => s(f)?.restartMs);
}

if (values.markdown) {
  const head = [
    `Machine: loopback TCP ${fmt(tcp)} MB/s, append + fdatasync ${fmt(disk)} MB/s; ` +
    `generator ceiling (rdkafka_performance against its mock broker): ${
      fmt(ceiling.mbPerSec)
    } MB/s ` +
    `with 1 KiB records, ${fmt(ceilingSmall.recordsPerSec)} records/s with 100 B records.`,
    "",
  ];
  await Deno.writeTextFile(values.markdown, [...head, ...table, ""].join("\n"));
}
