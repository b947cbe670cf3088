/**
 * Compaction on a 3-node cluster (issue 12): every replica cleans its own log, and a
 * leader killed (kill -9) in the middle of a cleaning costs nothing: the next leader and,
 * after its restart, the old one serve the latest record of every key at its offset.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { TestCluster } from "../_helpers/cluster.ts";
import { HAVE_CONFLUENT, needs, PYTHON, run } from "../_helpers/clients.ts";

const CHECK = fileURLToPath(new URL("./clients/confluent_compaction.py", import.meta.url));
const TOPIC = "compacted-3";

type Row = [offset: number, key: string, value: string | null];

/** Every record of the partition, read from the beginning through `bootstrap`. */
async function readAll(bootstrap: string): Promise<Row[]> {
  const out = await run(PYTHON, [CHECK, bootstrap, TOPIC, "0", "0", "none", "check"], {
    timeoutMs: 60_000,
  });
  return JSON.parse(out.stdout.trim().split("\n").at(-1)!);
}

/** Each key's last record in `rows` is the latest produced; every row was produced there. */
function checkLatest(rows: Row[], produced: Map<number, Row>, latest: Map<string, Row>) {
  for (let i = 1; i < rows.length; i++) {
    assert.ok(rows[i]![0] > rows[i - 1]![0], "offsets increase");
  }
  for (const r of rows) assert.deepEqual(produced.get(r[0]), r, `offset ${r[0]}`);
  const last = new Map<string, Row>();
  for (const r of rows) last.set(r[1], r);
  assert.deepEqual(last, latest);
}

Deno.test({
  name: "compaction: a leader killed mid-cleaning loses no key's latest value (3 nodes)",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn() {
    // A throttled cleaner (128 KiB/s over about 2 MB) is still cleaning when the kill comes.
    await using cluster = await TestCluster.start({
      args: [
        "--log-cleaner-backoff-ms",
        "100",
        "--log-cleaner-io-max-bytes-per-second",
        "131072",
      ],
    });
    await cluster.waitForBrokers(3);
    await cluster.createTopic(TOPIC, 1, 3, {
      "cleanup.policy": "compact",
      "segment.bytes": "65536",
      "min.cleanable.dirty.ratio": "0.01",
      "min.insync.replicas": "2",
    });
    const kafka = new Kafka({
      brokers: cluster.bootstrap().split(","),
      clientId: "compaction-failover",
      logLevel: logLevel.NOTHING,
      retry: { retries: 20, initialRetryTime: 100 },
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const produced = new Map<number, Row>();
    const latest = new Map<string, Row>();
    const write = async (round: number, keys: number) => {
      const messages = Array.from({ length: keys }, (_, k) => ({
        key: `key-${k}`,
        value: `round-${round}-key-${k}-${"x".repeat(60)}`,
      }));
      const [res] = await producer.send({ topic: TOPIC, acks: -1, messages });
      messages.forEach((m, i) => {
        const row: Row = [Number(res!.baseOffset) + i, m.key, m.value];
        produced.set(row[0], row);
        latest.set(m.key, row);
      });
    };
    try {
      for (let round = 0; round < 300; round++) await write(round, 50);
      const { leader } = await cluster.leaderOf(TOPIC, 0);
      await new Promise((r) => setTimeout(r, 1500)); // cleanings under way on every replica
      await cluster.kill(leader);
      for (let round = 300; round < 320; round++) await write(round, 25);
      checkLatest(await readAll(cluster.bootstrap()), produced, latest);
      await cluster.restart(leader);
      await cluster.waitForBrokers(3);
      // Move leadership around so each survivor and the restarted node answer once.
      for (const victim of [(await cluster.leaderOf(TOPIC, 0)).leader]) {
        await cluster.kill(victim);
        await write(999, 10);
        checkLatest(await readAll(cluster.bootstrap()), produced, latest);
        await cluster.restart(victim);
        await cluster.waitForBrokers(3);
      }
      checkLatest(await readAll(cluster.bootstrap()), produced, latest);
    } finally {
      await producer.disconnect().catch(() => {});
    }
  },
});
