/**
 * Consumer groups with real clients: confluent-kafka (three members sharing 30,000
 * records exactly once, a member leaving, commits, a broker restart, resuming from the
 * committed offsets), a kafkajs consumer group, and kcat -G.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { HAVE_CONFLUENT, HAVE_KCAT, needs, PYTHON, run } from "../_helpers/clients.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { createTopic } from "./_records.ts";

const GROUP_SCRIPT = fileURLToPath(new URL("./clients/confluent_group.py", import.meta.url));
const FAST_GROUPS = [
  "--group-initial-rebalance-delay-ms",
  "200",
  "--group-min-session-timeout-ms",
  "1000",
];

Deno.test({
  name:
    "groups: confluent-kafka members share 30,000 records exactly once, leave, commit, resume after restart",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn() {
    await using dir = await tempDir();
    let node = await NodeProcess.start({ dataDir: nodeDir(dir.path), args: FAST_GROUPS });
    try {
      const first = await run(PYTHON, [
        GROUP_SCRIPT,
        node.bootstrap,
        "grp",
        "g1",
        "consume",
        "30000",
      ], { timeoutMs: 180_000 });
      const a = JSON.parse(first.stdout.trim().split("\n").at(-1)!);
      assert.equal(a.received, 30_000);
      assert.equal(a.duplicates, 0, "exactly once across the rebalance");
      assert.deepEqual(a.errors, []);
      assert.equal(Object.keys(a.consumers).length, 3);
      for (const [name, n] of Object.entries(a.consumers)) {
        assert.ok((n as number) > 0, `${name} got partitions`);
      }

      assert.equal((await node.stop()).code, 0);
      node = await NodeProcess.start({ dataDir: node.dataDir, port: node.port, args: FAST_GROUPS });

      const second = await run(
        PYTHON,
        [GROUP_SCRIPT, node.bootstrap, "grp", "g1", "resume", "600"],
        { timeoutMs: 120_000 },
      );
      const b = JSON.parse(second.stdout.trim().split("\n").at(-1)!);
      assert.deepEqual(
        b,
        { received: 600, old: 0, duplicates: 0 },
        "resumed exactly at the committed offsets",
      );
    } finally {
      await node.kill();
    }
  },
});

Deno.test("groups: kafkajs members share partitions, one leaves, the other takes over, the group resumes", async () => {
  await using dir = await tempDir();
  const node = await NodeProcess.start({ dataDir: nodeDir(dir.path), args: FAST_GROUPS });
  const kafka = new Kafka({
    brokers: [node.bootstrap],
    clientId: "kj-group",
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer();
  const received = new Map<string, number>();
  const assignments = new Map<string, number>();
  const member = async (name: string) => {
    const consumer = kafka.consumer({
      groupId: "kjg-group",
      sessionTimeout: 6000,
      heartbeatInterval: 300,
      // kafkajs heartbeats only between fetches: keep its long polls short.
      maxWaitTimeInMs: 200,
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      assignments.set(
        name,
        Object.values(e.payload.memberAssignment).reduce((n, ps) => n + ps.length, 0),
      );
    });
    await consumer.connect();
    await consumer.subscribe({ topic: "kjg", fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        const key = message.key!.toString();
        received.set(key, (received.get(key) ?? 0) + 1);
        return Promise.resolve();
      },
    });
    return consumer;
  };
  const waitFor = async (cond: () => boolean, what: string) => {
    const deadline = Date.now() + 60_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const send = (from: number, n: number) =>
    producer.send({
      topic: "kjg",
      acks: -1,
      messages: Array.from(
        { length: n },
        (_, i) => ({ key: `${from + i}`, value: `v${from + i}` }),
      ),
    });
  try {
    await createTopic(node.port, "kjg", 4);
    await producer.connect();
    const a = await member("a");
    const b = await member("b");
    await waitFor(
      () => assignments.get("a") === 2 && assignments.get("b") === 2,
      "both members with 2 partitions",
    );
    await send(0, 1000);
    await waitFor(() => received.size >= 1000, "the first 1000 records");
    await b.disconnect(); // commits its offsets and leaves the group
    await waitFor(() => assignments.get("a") === 4, "a taking over b's partitions");
    await send(1000, 500);
    await waitFor(() => received.size >= 1500, "the next 500 records");
    await a.disconnect();
    assert.ok([...received.values()].every((n) => n === 1), "each record once");

    received.clear();
    await send(1500, 100);
    const c = await member("c");
    await waitFor(() => received.size >= 100, "the 100 records after the restart of the group");
    await new Promise((r) => setTimeout(r, 500)); // anything re-delivered would show up now
    await c.disconnect();
    assert.deepEqual(
      [...received.keys()].map(Number).sort((x, y) => x - y),
      Array.from({ length: 100 }, (_, i) => 1500 + i),
    );
  } finally {
    await producer.disconnect().catch(() => {});
    await node.kill();
  }
});

Deno.test({
  name: "groups: kcat -G consumes with a group and resumes from its committed offsets",
  ...needs("kcat", HAVE_KCAT),
  async fn() {
    await using dir = await tempDir();
    const node = await NodeProcess.start({ dataDir: nodeDir(dir.path), args: FAST_GROUPS });
    try {
      await createTopic(node.port, "kcg", 2);
      const produce = (from: number, n: number) =>
        run("kcat", ["-P", "-b", node.bootstrap, "-t", "kcg", "-K", ":"], {
          stdin: Array.from({ length: n }, (_, i) => `${from + i}:v${from + i}`).join("\n") + "\n",
        });
      const consume = async (n: number) => {
        const out = await run("kcat", [
          "-b",
          node.bootstrap,
          "-G",
          "kcat-group",
          "-c",
          String(n),
          "-q",
          "-f",
          "%k\\n",
          "-X",
          "auto.offset.reset=earliest",
          "-X",
          "session.timeout.ms=6000",
          "-X",
          "heartbeat.interval.ms=500",
          "kcg",
        ], { timeoutMs: 60_000 });
        return out.stdout.split("\n").filter((l) => l);
      };
      await produce(0, 500);
      assert.equal(new Set(await consume(500)).size, 500);
      await produce(500, 50);
      const next = await consume(50);
      assert.deepEqual(
        next.map(Number).sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => 500 + i),
      );
    } finally {
      await node.kill();
    }
  },
});
