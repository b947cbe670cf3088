/**
 * Transactional throughput (issue 13), Tidelog beside Apache Kafka 4.1 in one run: Kafka's
 * own producer (`TxnPerf` in tests/interop/java, an external load generator with exact
 * records-per-transaction control, which kafka-producer-perf-test's
 * `--transaction-duration-ms` lacks) against one node of each, started fresh and measured
 * alone (2 cores). Tidelog runs with its defaults: it fsyncs before it acknowledges, so a
 * transaction costs it several fsyncs (the coordinator's __transaction_state writes for the
 * partitions added, PrepareCommit and CompleteCommit, the data, the markers); Kafka, at its
 * defaults, fsyncs none of them.
 *
 * Kafka runs twice: formatted with `transaction.version=1`, the protocol Tidelog speaks
 * (KIP-98: AddPartitionsToTxn before a partition's first record, and the next transaction's
 * AddPartitionsToTxn answered CONCURRENT_TRANSACTIONS, which the client retries after 20 ms,
 * until the previous one's markers are written), the figures Tidelog's ratios are against;
 * and at its 4.1 default, `transaction.version=2` (KIP-890: partitions are added by the
 * produce itself, and the client may begin the next transaction at once), for reference.
 *
 * Each case: PRODUCERS producers (threads of one JVM), 1 KiB records round-robin over a
 * 4-partition topic (so a 10-record transaction spans every partition), a warm-up, then a
 * measured window:
 * - transactional, 10 records per transaction: transactions/s, MB/s, p50/p99 of a
 *   transaction (begin to commit returned);
 * - transactional, 1,000 records per transaction: the same;
 * - non-transactional (idempotent, acks=all, the same batching): MB/s (not for Kafka's
 *   second run: the transaction version does not change it).
 *
 * One JSON line per figure (`ratio` against Kafka, or against the broker's own
 * non-transactional rate for the cost of transactions). About 80 s.
 *
 * Run: deno run -A tests/bench/txn_bench.ts [--seconds 6] [--warmup 2] [--producers 4]
 *      [--only tidelog|kafka]
 */
import { parseArgs } from "node:util";
import { TestCluster } from "../_helpers/cluster.ts";
import { runJava } from "../_helpers/java.ts";
import { KafkaReference } from "../_helpers/kafka_reference.ts";
import { report } from "./_report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "6" },
    warmup: { type: "string", default: "2" },
    producers: { type: "string", default: "4" },
    only: { type: "string" },
  },
});
const PARTITIONS = 4;
const RECORD_SIZE = 1024;
const CASES = ["txn:10", "txn:1000", "plain"] as const;
type Case = typeof CASES[number];
/** Kafka's own broker JVM settings (kafka-server-start.sh's 1 GiB heap), as side_by_side.ts. */
const KAFKA_JVM = ["-Xms1g", "-Xmx1g", "-XX:+UseParallelGC"];
/** The generator gets the full JIT (the test helper's default is C1 only) and room for buffers. */
const GENERATOR_JVM = ["-XX:TieredStopAtLevel=4", "-Xmx1g"];

interface CaseFigures {
  case: Case;
  records: number;
  transactions: number;
  recordsPerSec: number;
  mbPerSec: number;
  txnsPerSec: number;
  txnP50Ms: number;
  txnP99Ms: number;
}

function note(message: string): void {
  // deno-lint-ignore no-console -- progress for the person running it
  console.error(`txn_bench: ${message}`);
}

async function measure(
  bootstrap: string,
  cases: readonly Case[] = CASES,
): Promise<Map<Case, CaseFigures>> {
  const out = await runJava("dev.tidelog.interop.TxnPerf", [
    bootstrap,
    "bench-txn",
    String(PARTITIONS),
    String(RECORD_SIZE),
    values.producers,
    values.warmup,
    values.seconds,
    ...cases,
  ], { jvmArgs: GENERATOR_JVM, timeoutMs: 600_000 });
  const figures = new Map<Case, CaseFigures>();
  for (const line of out.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const f = JSON.parse(line) as CaseFigures;
    figures.set(f.case, f);
  }
  for (const c of cases) {
    if (!figures.has(c)) throw new Error(`TxnPerf printed no figures for ${c}\n${out.stderr}`);
  }
  return figures;
}

async function tidelog(): Promise<Map<Case, CaseFigures>> {
  // Tidelog's own defaults for fencing and ISR timings (as side_by_side.ts).
  await using cluster = await TestCluster.start({
    size: 1,
    args: ["--broker-session-timeout-ms", "1500", "--replica-lag-time-max-ms", "5000"],
  });
  await cluster.waitForBrokers(1);
  return await measure(cluster.bootstrap());
}

async function kafka(
  transactionVersion: 1 | 2,
  cases: readonly Case[],
): Promise<Map<Case, CaseFigures>> {
  await using k = await KafkaReference.start({
    size: 1,
    jvmArgs: KAFKA_JVM,
    features: { "transaction.version": transactionVersion },
  });
  return await measure(k.bootstrap, cases);
}

note(`Tidelog, 1 node (${values.producers} producers, ${values.seconds} s per case)`);
const t = values.only === "kafka" ? null : await tidelog();
note("Apache Kafka 4.1, 1 node, transaction.version=1");
const k = values.only === "tidelog" ? null : await kafka(1, CASES);
note("Apache Kafka 4.1, 1 node, transaction.version=2 (its default)");
const k2 = values.only === "tidelog" ? null : await kafka(2, ["txn:10", "txn:1000"]);

const label: Record<Case, string> = {
  "txn:10": "transactional, 10 records per transaction",
  "txn:1000": "transactional, 1,000 records per transaction",
  "plain": "non-transactional (idempotent)",
};
const setup = `1 node, ${values.producers} producers, 1 KiB x ${PARTITIONS} partitions, acks=all`;

const KAFKA = "kafka (transaction.version=1)";
const KAFKA2 = "kafka (transaction.version=2)";

/** One figure: Kafka's, then Tidelog's against it (and against Kafka's default protocol). */
function row(name: string, unit: string, pick: (f: CaseFigures) => number, c: Case): void {
  const kv = k ? pick(k.get(c)!) : undefined;
  const kv2 = k2?.has(c) ? pick(k2.get(c)!) : undefined;
  const tv = t ? pick(t.get(c)!) : undefined;
  const full = `${setup}: ${label[c]}: ${name}`;
  if (kv !== undefined) report(`${KAFKA} ${full}`, kv, unit);
  if (kv2 !== undefined) report(`${KAFKA2} ${full}`, kv2, unit);
  if (tv !== undefined) {
    report(
      `tidelog ${full}`,
      tv,
      unit,
      kv !== undefined ? { name: `${KAFKA} ${full}`, value: kv } : undefined,
    );
    if (kv2 !== undefined) {
      report(`tidelog ${full}`, tv, unit, { name: `${KAFKA2} ${full}`, value: kv2 });
    }
  }
}

for (const c of CASES) {
  if (c !== "plain") row("transactions/s", "txn/s", (f) => f.txnsPerSec, c);
  row("throughput", "MB/s", (f) => f.mbPerSec, c);
  if (c !== "plain") {
    row("transaction p50 (begin to commit)", "ms", (f) => f.txnP50Ms, c);
    row("transaction p99 (begin to commit)", "ms", (f) => f.txnP99Ms, c);
  }
}
// What transactions cost each broker: transactional MB/s over its own non-transactional MB/s.
for (const [name, figures] of [["tidelog", t], [KAFKA, k]] as const) {
  if (!figures) continue;
  const plain = figures.get("plain")!.mbPerSec;
  for (const c of ["txn:10", "txn:1000"] as const) {
    report(
      `${name} ${setup}: ${label[c]}: throughput against its own non-transactional`,
      figures.get(c)!.mbPerSec,
      "MB/s",
      { name: `${name} ${setup}: ${label.plain}: throughput`, value: plain },
    );
  }
}
