/**
 * The read-only JSON API (issue 14 §1) on a 3-node cluster: every node answers the cluster,
 * broker and topic views from its own metadata image (the same cluster id, controller and
 * partition leaders as Metadata, plus its own replica's offsets), a group's details only on
 * its coordinator (the others answer 404 naming it), committed offsets with their lag, and
 * throughput counters; after kill -9 the controller fences the broker and the views say so.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { TestCluster } from "../_helpers/cluster.ts";

// deno-lint-ignore no-explicit-any -- JSON bodies, checked field by field below
type Json = any;

async function get(port: number, path: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  assert.equal(res.headers.get("access-control-allow-origin"), "*", path);
  return { status: res.status, body: await res.json() };
}

async function ok(port: number, path: string): Promise<Json> {
  const { status, body } = await get(port, path);
  assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
}

Deno.test({
  name: "http API: cluster, brokers, topics, groups and throughput views on every node",
  // kafkajs's sockets outlive the test's last await.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using cluster = await TestCluster.start({ size: 3, http: true });
    await cluster.waitForBrokers(3);
    await cluster.createTopic("orders", 3, 3, { "min.insync.replicas": "2" });
    const port = (id: number) => cluster.node(id).httpPort!;
    const kafka = new Kafka({
      brokers: cluster.bootstrap().split(","),
      clientId: "http-api-test",
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer();
    const admin = kafka.admin();
    try {
      await producer.connect();
      await admin.connect();
      for (let p = 0; p < 3; p++) {
        await producer.send({
          topic: "orders",
          messages: Array.from({ length: 100 * (p + 1) }, () => ({ value: "x".repeat(50) })),
          acks: -1,
        });
      }
      await admin.setOffsets({
        groupId: "api-group",
        topic: "orders",
        partitions: [0, 1, 2].map((partition) => ({ partition, offset: "0" })),
      });
      const produced = await admin.fetchTopicOffsets("orders");
      const ends = new Map(produced.map((o) => [o.partition, Number(o.high)]));
      const total = [...ends.values()].reduce((a, b) => a + b, 0);
      assert.equal(total, 600);

      // Cluster: one view of the cluster everywhere, each node's own Raft state.
      const controller = await cluster.controllerId();
      const clusters = await Promise.all([1, 2, 3].map((id) => ok(port(id), "/v1/cluster")));
      for (const [i, c] of clusters.entries()) {
        assert.equal(c.nodeId, i + 1);
        assert.equal(c.clusterId, clusters[0].clusterId);
        assert.equal(c.controllerId, controller);
        assert.equal(c.raft.leader, controller);
        assert.equal(c.raft.role, i + 1 === controller ? "leader" : "follower");
        assert.deepEqual(c.raft.voters, [1, 2, 3]);
        assert.deepEqual(c.brokers, { registered: 3, live: 3 });
        assert.equal(c.topics, 2, "orders and __consumer_offsets");
      }

      // Brokers.
      const { brokers } = await ok(port(2), "/v1/brokers");
      assert.deepEqual(
        brokers.map((b: Json) => [b.id, b.state, b.isController, b.port]),
        [1, 2, 3].map((id) => [id, "up", id === controller, cluster.node(id).kafkaPort]),
      );

      // Topics: the summary, then each partition as Metadata has it and as this node holds it.
      const { topics } = await ok(port(3), "/v1/topics");
      const orders = topics.find((t: Json) => t.name === "orders");
      assert.deepEqual(
        { ...orders, topicId: undefined },
        {
          name: "orders",
          topicId: undefined,
          internal: false,
          partitions: 3,
          replicationFactor: 3,
          underReplicated: 0,
          underMinIsr: 0,
          offline: 0,
        },
      );
      assert.equal(topics.find((t: Json) => t.name === "__consumer_offsets")?.internal, true);
      for (const id of [1, 2, 3]) {
        const t = await ok(port(id), "/v1/topics/orders");
        assert.deepEqual(t.configs, { "min.insync.replicas": "2" });
        assert.equal(t.minInsyncReplicas, 2);
        for (const p of t.partitionDetails) {
          const md = await cluster.leaderOf("orders", p.partition);
          assert.equal(p.leader, md.leader);
          assert.equal(p.replicas.length, 3);
          assert.equal(p.underReplicated, false);
          // Replication factor 3: every node holds a replica.
          assert.equal(p.local.role, p.leader === id ? "leader" : "follower");
          if (p.leader === id) {
            assert.equal(p.local.highWatermark, ends.get(p.partition));
            assert.equal(p.local.logEndOffset, ends.get(p.partition));
            assert.equal(p.local.lastStableOffset, ends.get(p.partition));
            assert.ok(p.local.sizeBytes > 0);
          }
        }
      }
      const missing = await get(port(1), "/v1/topics/nope");
      assert.equal(missing.status, 404);
      assert.match(missing.body.error, /Unknown topic nope/);

      // Groups: on the coordinator only; the other nodes name it.
      const lists = await Promise.all([1, 2, 3].map((id) => ok(port(id), "/v1/groups")));
      assert.equal(lists.reduce((n, l) => n + l.offsetsPartitionsLed, 0), 50);
      const holders = lists.filter((l) => l.groups.some((g: Json) => g.groupId === "api-group"));
      assert.equal(holders.length, 1, "one coordinator lists the group");
      const coordinator = holders[0].nodeId;
      const summary = holders[0].groups.find((g: Json) => g.groupId === "api-group");
      assert.equal(summary.lag, 600);
      assert.equal(summary.partitions, 3);
      assert.equal(summary.partitionsWithoutEnd, 0);
      const group = await ok(port(coordinator), "/v1/groups/api-group");
      assert.equal(group.coordinator, coordinator);
      assert.equal(group.state, "Empty");
      assert.deepEqual(
        group.offsets.map((o: Json) => [o.partition, o.committedOffset, o.lag]),
        [0, 1, 2].map((p) => [p, 0, ends.get(p)]),
      );
      for (const id of [1, 2, 3].filter((id) => id !== coordinator)) {
        const elsewhere = await get(port(id), "/v1/groups/api-group");
        assert.equal(elsewhere.status, 404);
        assert.equal(elsewhere.body.coordinator.id, coordinator);
        assert.equal(elsewhere.body.coordinator.port, cluster.node(coordinator).kafkaPort);
        assert.match(elsewhere.body.error, new RegExp(`coordinated by node ${coordinator}`));
      }
      const unknown = await get(port(coordinator), "/v1/groups/nobody%2Fhere");
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.groupId, "nobody/here");

      // Throughput: what the produce requests appended, counted on the partitions' leaders.
      const traffic = await Promise.all([1, 2, 3].map((id) => ok(port(id), "/v1/throughput")));
      const messagesIn = traffic.reduce(
        (n, t) => n + (t.topics.find((x: Json) => x.topic === "orders")?.messagesIn ?? 0),
        0,
      );
      assert.equal(messagesIn, 600);
      assert.ok(traffic.every((t) => typeof t.atMs === "number" && t.bytesIn >= 0));

      // kill -9: the controller fences the broker; its partitions are under-replicated.
      const victim = [1, 2, 3].find((id) => id !== controller)!;
      await cluster.kill(victim);
      const survivor = controller;
      await cluster.waitFor(
        `broker ${victim} fenced in /v1/brokers`,
        async () => {
          const { brokers } = await ok(port(survivor), "/v1/brokers");
          return brokers.find((b: Json) => b.id === victim)?.state === "fenced";
        },
        30_000,
        100,
      );
      const after = await cluster.waitFor(
        "the ISR shrunk",
        async () => {
          const c = await ok(port(survivor), "/v1/cluster");
          return c.underReplicatedPartitions > 0 ? c : null;
        },
        30_000,
        100,
      );
      assert.deepEqual(after.brokers, { registered: 3, live: 2 });
    } finally {
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
    }
  },
});
