/**
 * Transactions with real clients (issue 13): confluent-kafka (librdkafka) commits and aborts
 * over 3 partitions (read_committed sees exactly the committed records, read_uncommitted
 * all), runs a consume-transform-produce loop with send_offsets_to_transaction (one
 * transaction aborted and redone), is fenced by a second producer with the same
 * transactional id, and has a transaction aborted by its timeout; kafkajs runs
 * `producer.transaction()` with `sendOffsets`, commit and abort; the coordinator's state
 * survives a restart of the node.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { HAVE_CONFLUENT, needs, PYTHON, run } from "../_helpers/clients.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";

const SCRIPT = fileURLToPath(new URL("./clients/confluent_txn.py", import.meta.url));

async function confluent(bootstrap: string, ...args: string[]): Promise<Record<string, unknown>> {
  const out = await run(PYTHON, [SCRIPT, bootstrap, ...args], { timeoutMs: 180_000 });
  return JSON.parse(out.stdout.trim().split("\n").at(-1)!);
}

const range = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));

Deno.test({
  name: "transactions: confluent-kafka commit/abort, consume-transform-produce, fencing, timeout",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn(t) {
    await using dir = await tempDir();
    let node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
    try {
      await t.step(
        "read_committed sees exactly the committed records, read_uncommitted all",
        async () => {
          const out = await confluent(node.bootstrap, "basic", "txn-basic") as {
            read_committed: string[];
            read_uncommitted: string[];
          };
          const committed = [
            ...range(30, (i) => `commit-${i}`),
            ...range(3, (i) => `commit2-${i}`),
          ];
          assert.deepEqual(out.read_committed, committed.sort());
          assert.deepEqual(
            out.read_uncommitted,
            [...committed, ...range(30, (i) => `abort-${i}`)].sort(),
          );
        },
      );

      await t.step(
        "consume-transform-produce with send_offsets_to_transaction copies each record once",
        async () => {
          const out = await confluent(
            node.bootstrap,
            "pipeline",
            "txn-in",
            "txn-out",
            "txn-copier",
            "2000",
          ) as { copied: number; aborted: number; committed: number; output: string[] };
          assert.equal(out.aborted, 1);
          assert.equal(out.copied, 2000);
          assert.equal(out.committed, 2000, "the group's offsets were committed with the output");
          assert.deepEqual(out.output, range(2000, (i) => `copy-${i}`).sort());
        },
      );

      await t.step(
        "a second producer with the same transactional id fences the first",
        async () => {
          const out = await confluent(node.bootstrap, "fencing", "txn-fenced") as {
            first_commit_error: string | null;
            read_committed: string[];
          };
          assert.equal(out.first_commit_error, "_FENCED");
          assert.deepEqual(out.read_committed, range(5, (i) => `live-${i}`));
        },
      );

      await t.step("a transaction open past transaction.timeout.ms is aborted", async () => {
        const out = await confluent(node.bootstrap, "timeout", "txn-timeout") as {
          commit_error: string | null;
          read_committed: string[];
        };
        assert.notEqual(out.commit_error, null);
        assert.deepEqual(out.read_committed, []);
      });

      await t.step("kafkajs: transaction() with sendOffsets, commit and abort", async () => {
        const kafka = new Kafka({
          brokers: [node.bootstrap],
          clientId: "kafkajs-txn",
          logLevel: logLevel.NOTHING,
        });
        const admin = kafka.admin();
        const producer = kafka.producer({
          transactionalId: "kafkajs-txn",
          idempotent: true,
          maxInFlightRequests: 1,
        });
        await admin.connect();
        await producer.connect();
        try {
          await admin.createTopics({ topics: [{ topic: "kj-txn", numPartitions: 3 }] });
          const committed = await producer.transaction();
          await committed.send({
            topic: "kj-txn",
            messages: range(30, (i) => `kj-commit-${i}`).map((value, i) => ({
              value,
              partition: i % 3,
            })),
          });
          await committed.sendOffsets({
            consumerGroupId: "kj-txn-group",
            topics: [{ topic: "kj-txn", partitions: [{ partition: 0, offset: "7" }] }],
          });
          await committed.commit();
          const aborted = await producer.transaction();
          await aborted.send({
            topic: "kj-txn",
            messages: range(30, (i) => `kj-abort-${i}`).map((value, i) => ({
              value,
              partition: i % 3,
            })),
          });
          await aborted.sendOffsets({
            consumerGroupId: "kj-txn-group",
            topics: [{ topic: "kj-txn", partitions: [{ partition: 0, offset: "99" }] }],
          });
          await aborted.abort();
          const offsets = await admin.fetchOffsets({ groupId: "kj-txn-group", topics: ["kj-txn"] });
          const p0 = offsets[0]!.partitions.find((p) => p.partition === 0)!;
          assert.equal(p0.offset, "7", "the aborted transaction's offsets are not visible");
          const seen = await confluentRead(node.bootstrap, "kj-txn", "read_committed");
          assert.deepEqual(seen, range(30, (i) => `kj-commit-${i}`).sort());
          const all = await confluentRead(node.bootstrap, "kj-txn", "read_uncommitted");
          assert.equal(all.length, 60);
          const consumed = await kafkajsReadCommitted(kafka, "kj-txn", 30);
          assert.deepEqual(consumed.sort(), range(30, (i) => `kj-commit-${i}`).sort());
        } finally {
          await producer.disconnect();
          await admin.disconnect();
        }
      });

      await t.step(
        "after a restart the ids continue and transactional offsets are reloaded",
        async () => {
          await node.stop();
          node = await NodeProcess.start({ dataDir: node.dataDir, port: node.port });
          const out = await confluent(node.bootstrap, "basic", "txn-basic-2") as {
            read_committed: string[];
          };
          // The same transactional id (txn-basic) continues with a bumped epoch.
          assert.equal(out.read_committed.length, 33);
          const kafka = new Kafka({
            brokers: [node.bootstrap],
            clientId: "kafkajs-txn",
            logLevel: logLevel.NOTHING,
          });
          const admin = kafka.admin();
          await admin.connect();
          try {
            const offsets = await admin.fetchOffsets({
              groupId: "kj-txn-group",
              topics: ["kj-txn"],
            });
            assert.equal(offsets[0]!.partitions.find((p) => p.partition === 0)!.offset, "7");
          } finally {
            await admin.disconnect();
          }
        },
      );
    } finally {
      await node.stop();
    }
  },
});

async function confluentRead(bootstrap: string, topic: string, isolation: string) {
  const out = await run(PYTHON, [SCRIPT, bootstrap, "read", topic, isolation], {
    timeoutMs: 60_000,
  });
  return JSON.parse(out.stdout.trim().split("\n").at(-1)!) as string[];
}

/** A kafkajs consumer (read_committed, its default) reading `count` values from the start. */
async function kafkajsReadCommitted(kafka: Kafka, topic: string, count: number) {
  const consumer = kafka.consumer({ groupId: `kj-reader-${Date.now()}` });
  const values: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      consumer.run({
        eachMessage: ({ message }) => {
          values.push(message.value!.toString());
          if (values.length >= count) resolve();
          return Promise.resolve();
        },
      });
    });
    await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
    // Anything beyond `count` (an aborted record leaking through) would show up here.
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    await consumer.disconnect();
  }
  return values;
}
