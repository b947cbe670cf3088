/**
 * Compacted topics with real clients (issue 12): confluent-kafka (librdkafka) and kafkajs
 * write 100 keys x 1,000 versions with tombstones (librdkafka also with each codec); once
 * the cleaner has run, consumers reading from the beginning (librdkafka, kafkajs) see
 * exactly the latest record of every key (tombstones within their horizon included) at
 * its original offset, and a record without a key is refused with INVALID_RECORD.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { HAVE_CONFLUENT, needs, PYTHON, run } from "./../_helpers/clients.ts";
import { nodeDir, NodeProcess, tempDir } from "./../_helpers/node_process.ts";

const SCRIPT = fileURLToPath(new URL("./clients/confluent_compaction.py", import.meta.url));

type Row = [offset: number, key: string, value: string | null];

/** Reads the topic until it holds exactly `expected` (the cleaner runs in the background). */
async function waitForCompacted(bootstrap: string, topic: string, expected: Row[]) {
  const deadline = Date.now() + 60_000;
  let last: Row[] = [];
  while (Date.now() < deadline) {
    const out = await run(PYTHON, [SCRIPT, bootstrap, topic, "0", "0", "none", "check"], {
      timeoutMs: 60_000,
    });
    last = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    if (last.length === expected.length) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.deepEqual(last, expected);
}

Deno.test({
  name: "compaction: confluent-kafka writes 100 keys x 1,000 versions with tombstones, each codec",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn(t) {
    await using dir = await tempDir();
    const node = await NodeProcess.start({
      dataDir: nodeDir(dir.path),
      args: ["--log-cleaner-backoff-ms", "200"],
    });
    try {
      for (
        const [codec, versions] of [["none", 1000], ["gzip", 200], ["snappy", 200], ["lz4", 200], [
          "zstd",
          200,
        ]] as const
      ) {
        await t.step(`${codec}: the latest record of every key at its offset`, async () => {
          const topic = `compacted-${codec}`;
          const out = await run(
            PYTHON,
            [SCRIPT, node.bootstrap, topic, "100", String(versions), codec, "produce"],
            { timeoutMs: 300_000 },
          );
          const produced = JSON.parse(out.stdout.trim().split("\n").at(-1)!) as {
            latest: Record<string, [number, string | null]>;
            errors: string[];
            null_key_error: string | null;
          };
          assert.deepEqual(produced.errors, []);
          assert.equal(produced.null_key_error, "INVALID_RECORD");
          const expected: Row[] = Object.entries(produced.latest)
            .map(([key, [offset, value]]): Row => [offset, key, value])
            .sort((a, b) => a[0] - b[0]);
          assert.equal(expected.length, 101);
          assert.equal(expected.filter((r) => r[2] === null).length, 10);
          await waitForCompacted(node.bootstrap, topic, expected);
        });
      }
    } finally {
      await node.kill();
    }
  },
});

Deno.test({
  name:
    "compaction: kafkajs writes 100 keys x 1,000 versions with tombstones and reads them compacted",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn() {
    await using dir = await tempDir();
    const node = await NodeProcess.start({
      dataDir: nodeDir(dir.path),
      args: ["--log-cleaner-backoff-ms", "200"],
    });
    const kafka = new Kafka({
      brokers: [node.bootstrap],
      clientId: "kafkajs-compaction",
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    const topic = "compacted-kafkajs";
    try {
      await admin.connect();
      await producer.connect();
      await admin.createTopics({
        topics: [{
          topic,
          numPartitions: 1,
          configEntries: [
            { name: "cleanup.policy", value: "compact" },
            { name: "segment.bytes", value: "65536" },
            { name: "segment.ms", value: "1000" },
            { name: "min.cleanable.dirty.ratio", value: "0.01" },
          ],
        }],
      });
      const latest = new Map<string, [number, string | null]>();
      for (let version = 0; version < 1000; version++) {
        const messages = Array.from({ length: 100 }, (_, k) => ({
          key: `key-${k}`,
          value: version === 999 && k % 10 === 0 ? null : `value-${k}-${version}`,
        }));
        const [res] = await producer.send({ topic, acks: -1, messages });
        messages.forEach((m, i) => latest.set(m.key, [Number(res!.baseOffset) + i, m.value]));
      }
      await assert.rejects(
        producer.send({ topic, messages: [{ value: "no key" }] }),
        (err: Error & { type?: string }) => err.type === "INVALID_RECORD",
      );
      await new Promise((r) => setTimeout(r, 1200)); // segment.ms: the next append rolls
      const [end] = await producer.send({ topic, messages: [{ key: "marker", value: "end" }] });
      latest.set("marker", [Number(end!.baseOffset), "end"]);
      const expected: Row[] = [...latest].map(([key, [offset, value]]): Row => [offset, key, value])
        .sort((a, b) => a[0] - b[0]);
      await waitForCompacted(node.bootstrap, topic, expected);
      // kafkajs reads the compacted log (gaps, thinned batches) as well.
      const consumer = kafka.consumer({ groupId: "compaction-kafkajs" });
      const seen: Row[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const done = Promise.withResolvers<void>();
      await consumer.run({
        eachMessage: ({ message }) => {
          const key = message.key!.toString();
          seen.push([Number(message.offset), key, message.value?.toString() ?? null]);
          if (key === "marker") done.resolve();
          return Promise.resolve();
        },
      });
      await done.promise;
      await consumer.disconnect();
      assert.deepEqual(seen, expected);
    } finally {
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
      await node.kill();
    }
  },
});
