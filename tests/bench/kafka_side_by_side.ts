/**
 * Tidelog beside Apache Kafka 4.1 in one run, with the same external load generator:
 * Kafka's own `kafka-producer-perf-test` and `kafka-consumer-perf-test` (from the Maven
 * module in tests/interop/java). Each broker runs alone on the machine while it is
 * measured (the machine has 2 cores), started fresh with its defaults: Tidelog fsyncs
 * before it acknowledges, Kafka (default config) does not.
 *
 * Figures (one JSON line each, Kafka's figure as the baseline, so `ratio` is
 * Tidelog / Kafka):
 * - 1 node, acks=1, 1 KiB records, 4 partitions: produce MB/s and records/s;
 * - 1 node, consume everything from the start: MB/s;
 * - 3 nodes, acks=all, RF 3, min.insync.replicas 2: produce MB/s, p50/p99 latency.
 *
 * Run: deno run -A tests/bench/kafka_side_by_side.ts [--records N] [--record-size B]
 *      [--only tidelog|kafka]
 */
import { parseArgs } from "node:util";
import { TestCluster } from "../_helpers/cluster.ts";
import { kafkaTool } from "../_helpers/java.ts";
import { KafkaReference } from "../_helpers/kafka_reference.ts";
import { report } from "./_report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    records: { type: "string", default: "300000" },
    "record-size": { type: "string", default: "1024" },
    only: { type: "string" },
  },
});
const RECORDS = Number(values.records);
const RECORD_SIZE = Number(values["record-size"]);
const PARTITIONS = 4;
/** Kafka's own broker JVM settings (kafka-server-start.sh's 1 GiB heap). */
const KAFKA_JVM = ["-Xms1g", "-Xmx1g", "-XX:+UseParallelGC"];

function note(message: string): void {
  // deno-lint-ignore no-console -- progress for the person running it
  console.error(`kafka_side_by_side: ${message}`);
}

interface ProduceFigures {
  recordsPerSec: number;
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** Parses kafka-producer-perf-test's summary line. */
function parseProduce(out: string): ProduceFigures {
  const m = out.match(
    /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency, (\d+) ms 50th, \d+ ms 95th, (\d+) ms 99th/,
  );
  if (!m) throw new Error(`Cannot read kafka-producer-perf-test's output:\n${out}`);
  return {
    recordsPerSec: Number(m[2]),
    mbPerSec: Number(m[3]),
    p50Ms: Number(m[4]),
    p99Ms: Number(m[5]),
  };
}

async function createTopic(bootstrap: string, topic: string, rf: number, minIsr: number) {
  await kafkaTool("kafka-topics", [
    "--bootstrap-server",
    bootstrap,
    "--create",
    "--topic",
    topic,
    "--partitions",
    String(PARTITIONS),
    "--replication-factor",
    String(rf),
    "--config",
    `min.insync.replicas=${minIsr}`,
  ]);
}

async function produce(bootstrap: string, topic: string, acks: string): Promise<ProduceFigures> {
  const out = await kafkaTool("kafka-producer-perf-test", [
    "--topic",
    topic,
    "--num-records",
    String(RECORDS),
    "--record-size",
    String(RECORD_SIZE),
    "--throughput",
    "-1",
    "--producer-props",
    `bootstrap.servers=${bootstrap}`,
    `acks=${acks}`,
    "linger.ms=5",
    "batch.size=65536",
  ], { timeoutMs: 600_000, jvmArgs: ["-Xmx512m"] });
  return parseProduce(out.stdout);
}

async function consume(bootstrap: string, topic: string): Promise<number> {
  const out = await kafkaTool("kafka-consumer-perf-test", [
    "--bootstrap-server",
    bootstrap,
    "--topic",
    topic,
    "--messages",
    String(RECORDS),
    "--timeout",
    "60000",
  ], { timeoutMs: 600_000, jvmArgs: ["-Xmx512m"] });
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
  // rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  const row = out.stdout.trim().split("\n").at(-1)!.split(", ");
  if (Number(row[4]) < RECORDS) throw new Error(`Consumed only ${row[4]} records:\n${out.stdout}`);
  return Number(row[8]); // fetch.MB.sec: excludes the group join
}

interface BrokerFigures {
  oneNode: ProduceFigures;
  consumeMBps: number;
  threeNodes: ProduceFigures;
}

async function measure(
  name: string,
  start: (size: 1 | 3) => Promise<{ bootstrap: string } & AsyncDisposable>,
): Promise<BrokerFigures> {
  let oneNode: ProduceFigures;
  let consumeMBps: number;
  {
    note(`${name}: 1 node`);
    await using broker = await start(1);
    await createTopic(broker.bootstrap, "bench1", 1, 1);
    oneNode = await produce(broker.bootstrap, "bench1", "1");
    consumeMBps = await consume(broker.bootstrap, "bench1");
  }
  note(`${name}: 3 nodes`);
  await using broker = await start(3);
  await createTopic(broker.bootstrap, "bench3", 3, 2);
  const threeNodes = await produce(broker.bootstrap, "bench3", "all");
  return { oneNode, consumeMBps, threeNodes };
}

async function startTidelog(size: 1 | 3) {
  const cluster = await TestCluster.start({ size });
  await cluster.waitForBrokers(size);
  return {
    bootstrap: cluster.bootstrap(),
    [Symbol.asyncDispose]: () => cluster.close(),
  };
}

async function startKafka(size: 1 | 3) {
  const kafka = await KafkaReference.start({ size, jvmArgs: KAFKA_JVM });
  return {
    bootstrap: kafka.bootstrap,
    [Symbol.asyncDispose]: () => kafka[Symbol.asyncDispose](),
  };
}

const tidelog = values.only === "kafka" ? null : await measure("tidelog", startTidelog);
const kafka = values.only === "tidelog" ? null : await measure("kafka", startKafka);

function row(figure: string, unit: string, pick: (f: BrokerFigures) => number) {
  const base = kafka ? { name: `kafka ${figure}`, value: pick(kafka) } : undefined;
  if (tidelog) report(`tidelog ${figure}`, pick(tidelog), unit, base);
  else if (base) report(base.name, base.value, unit);
}

const size = `${RECORDS} x ${RECORD_SIZE} B, ${PARTITIONS} partitions`;
row(`1 node produce acks=1 (${size})`, "MB/s", (f) => f.oneNode.mbPerSec);
row(`1 node produce acks=1 (${size})`, "records/s", (f) => f.oneNode.recordsPerSec);
row(`1 node consume from the start (${size})`, "MB/s", (f) => f.consumeMBps);
row(`3 nodes produce acks=all RF 3 (${size})`, "MB/s", (f) => f.threeNodes.mbPerSec);
row(`3 nodes produce acks=all latency at full load p50`, "ms", (f) => f.threeNodes.p50Ms);
row(`3 nodes produce acks=all latency at full load p99`, "ms", (f) => f.threeNodes.p99Ms);
