/**
 * Interop with kafkajs 2.2 (no flexible versions): admin operations, 10,000 keyed
 * records with headers at acks=1 and acks=all, read back byte-exact with a raw Fetch,
 * offsets by timestamp, partition growth and topic deletion.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { fetchAll } from "../_helpers/fetch_all.ts";
import { assertExactlyOnceInOrder, testRecord } from "./_records.ts";

Deno.test("kafkajs: admin, produce with keys and headers at acks=1/all, byte-exact read, timestamps, delete", async (t) => {
  await using dir = await tempDir();
  const node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
  const kafka = new Kafka({
    brokers: [node.bootstrap],
    clientId: "kafkajs-test",
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  try {
    await admin.connect();
    await producer.connect();
    const records = Array.from({ length: 10_000 }, (_, i) => testRecord(i, "kafkajs"));

    await t.step("createTopics and describeCluster", async () => {
      assert.equal(
        await admin.createTopics({ topics: [{ topic: "kj-3", numPartitions: 3 }] }),
        true,
      );
      const cluster = await admin.describeCluster();
      assert.deepEqual(cluster.brokers.map((b) => `${b.host}:${b.port}`), [node.bootstrap]);
      assert.equal(cluster.controller, 1);
      const md = await admin.fetchTopicMetadata({ topics: ["kj-3"] });
      assert.equal(md.topics[0]!.partitions.length, 3);
    });

    await t.step(
      "10,000 records with headers at acks=1 and acks=all are stored exactly",
      async () => {
        const start = Date.now();
        for (let i = 0; i < records.length; i += 1000) {
          await producer.send({
            topic: "kj-3",
            acks: i < 5000 ? 1 : -1,
            messages: records.slice(i, i + 1000).map((r) => ({
              key: r.key,
              value: r.value,
              headers: { via: "kafkajs" },
            })),
          });
        }
        const consumed = await fetchAll(node.port, "kj-3", 3);
        assertExactlyOnceInOrder(consumed, records);
        assert.ok(consumed.every((c) => c.headers === "via=kafkajs"));
        assert.ok(consumed.every((c) => c.timestamp >= start - 1000), "CreateTime timestamps kept");
        const offsets = await admin.fetchTopicOffsets("kj-3");
        assert.equal(offsets.reduce((s, o) => s + Number(o.high), 0), 10_000);
      },
    );

    await t.step("fetchTopicOffsetsByTimestamp: future → end, past → start", async () => {
      const future = await admin.fetchTopicOffsetsByTimestamp("kj-3", Date.now() + 3_600_000);
      const high = await admin.fetchTopicOffsets("kj-3");
      for (const f of future) {
        assert.equal(f.offset, high.find((h) => h.partition === f.partition)!.high);
      }
      const past = await admin.fetchTopicOffsetsByTimestamp("kj-3", 0);
      assert.ok(past.every((p) => p.offset === "0"));
    });

    await t.step("createPartitions grows the topic; describeConfigs shows overrides", async () => {
      await admin.createPartitions({ topicPartitions: [{ topic: "kj-3", count: 5 }] });
      const md = await admin.fetchTopicMetadata({ topics: ["kj-3"] });
      assert.equal(md.topics[0]!.partitions.length, 5);
      await admin.createTopics({
        topics: [{ topic: "kj-conf", configEntries: [{ name: "retention.ms", value: "60000" }] }],
      });
      const desc = await admin.describeConfigs({
        resources: [{ type: 2, name: "kj-conf" }],
        includeSynonyms: false,
      });
      const entry = desc.resources[0]!.configEntries.find((e) => e.configName === "retention.ms")!;
      assert.equal(entry.configValue, "60000");
      assert.equal(entry.isDefault, false);
    });

    await t.step("deleteTopics removes the topic and its data", async () => {
      await admin.deleteTopics({ topics: ["kj-3"] });
      const topics = await admin.listTopics();
      assert.ok(!topics.includes("kj-3"));
      const left = [];
      for await (const e of Deno.readDir(`${node.dataDir}/topics`)) left.push(e.name);
      assert.ok(!left.some((n) => n.startsWith("kj-3-")), `no kj-3 folders left: ${left}`);
    });
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    await node.kill();
  }
});
