/**
 * Leader failover with a real client (I1, DESIGN §8): a 3-node cluster, one partition with
 * replication factor 3 and min.insync.replicas=2. A kafkajs producer (acks=all, one record
 * per request) writes 50 records, the leader is killed with SIGKILL, and the same producer
 * writes 50 more: it must find the new leader by itself. A fresh consumer then reads all
 * 100 from the beginning: none lost, none duplicated, in order. Prints the time from the
 * kill to the first acknowledged produce on the new leader.
 *
 * Also, with raw requests: a Produce sent to a replica that is not the leader is answered
 * NOT_LEADER_OR_FOLLOWER (6) and appends nothing; from Produce v10 on, the partition
 * response names the current leader and its epoch and the response carries the leader's
 * endpoint (KIP-951), so a client can re-route without a Metadata round trip.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { ApiKey, ErrorCode, errorName } from "../../lib/protocol/mod.ts";
import { TestCluster } from "../_helpers/cluster.ts";
import { oneRecordProduce } from "../_helpers/produce.ts";
import { fetchAll } from "../_helpers/fetch_all.ts";

const TOPIC = "failover";
const COUNT = 50;

const key = (i: number) => `k${i}`;
const value = (i: number) => `failover-${i}`;

Deno.test({
  name: "failover: kill -9 of the leader loses and duplicates no acks=all record (kafkajs)",
  // kafkajs keeps retry timers and sockets past disconnect().
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using cluster = await TestCluster.start({ size: 3 });
    await cluster.createTopic(TOPIC, 1, 3, { "min.insync.replicas": "2" });
    const before = await cluster.leaderOf(TOPIC, 0);
    assert.equal(before.replicas.length, 3, `replicas ${before.replicas}`);
    assert.ok(before.isr.includes(before.leader), `leader ${before.leader} in ISR ${before.isr}`);

    await t.step(
      "Produce to a follower: NOT_LEADER_OR_FOLLOWER, with the leader from v10 (KIP-951)",
      async () => {
        const follower = before.replicas.find((id) => id !== before.leader)!;
        const conn = await cluster.connect(follower);
        try {
          for (const version of [3, 7, 9, 10, 11]) {
            const res = await conn.request(
              ApiKey.Produce,
              version,
              oneRecordProduce(TOPIC, 0, `misrouted-v${version}`),
            );
            const p = res.responses[0]?.partitionResponses[0];
            assert.ok(p, `Produce v${version} to node ${follower}: a partition response`);
            assert.equal(
              p.errorCode,
              ErrorCode.NOT_LEADER_OR_FOLLOWER,
              `Produce v${version} to follower ${follower} answered ${errorName(p.errorCode)}`,
            );
            if (version < 10) continue;
            assert.deepEqual(
              { leaderId: p.currentLeader.leaderId, leaderEpoch: p.currentLeader.leaderEpoch },
              { leaderId: before.leader, leaderEpoch: before.leaderEpoch },
              `Produce v${version}: currentLeader names the leader and its epoch`,
            );
            const endpoint = res.nodeEndpoints.find((e) => e.nodeId === before.leader);
            assert.ok(
              endpoint,
              `Produce v${version}: nodeEndpoints ${JSON.stringify(res.nodeEndpoints)} ` +
                `holds leader ${before.leader}`,
            );
            assert.deepEqual(
              { host: endpoint.host, port: endpoint.port },
              { host: "127.0.0.1", port: cluster.node(before.leader).kafkaPort },
              `Produce v${version}: the leader's endpoint`,
            );
          }
        } finally {
          await conn.close();
        }
      },
    );

    const kafka = new Kafka({
      brokers: cluster.bootstrap().split(","),
      clientId: "failover-test",
      // KAFKAJS_LOG=1 shows the client's own account of its retries and group joins.
      logLevel: Deno.env.get("KAFKAJS_LOG") ? logLevel.INFO : logLevel.NOTHING,
      connectionTimeout: 1000,
      requestTimeout: 30_000,
      // Generous: about 25 s of re-tries, each re-reading metadata, before a send fails.
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1 });
    await producer.connect();
    const send = async (i: number) => {
      const [meta] = await producer.send({
        topic: TOPIC,
        acks: -1,
        timeout: 30_000,
        messages: [{ key: key(i), value: value(i), partition: 0 }],
      });
      assert.equal(meta?.errorCode, 0, `record ${i} acknowledged`);
      return meta;
    };

    try {
      await t.step(`${COUNT} records at acks=all through the leader`, async () => {
        for (let i = 0; i < COUNT; i++) {
          const meta = await send(i);
          assert.equal(meta?.baseOffset, String(i), `record ${i} at offset ${i}`);
        }
      });

      let newLeader = -1;
      await t.step("kill -9 of the leader: the same producer finds the new leader", async () => {
        const killedAt = performance.now();
        await cluster.kill(before.leader);
        await send(COUNT);
        const failoverMs = performance.now() - killedAt;
        // deno-lint-ignore no-console -- the figure is the point of this line
        console.error(
          `failover: node ${before.leader} killed; first acks=all produce acknowledged ` +
            `${failoverMs.toFixed(0)} ms later`,
        );
        for (let i = COUNT + 1; i < 2 * COUNT; i++) await send(i);
        const after = await cluster.leaderOf(TOPIC, 0);
        assert.notEqual(after.leader, before.leader, "a new leader");
        assert.ok(
          after.leaderEpoch > before.leaderEpoch,
          `leader epoch grew: ${before.leaderEpoch} → ${after.leaderEpoch}`,
        );
        assert.ok(after.isr.includes(after.leader), `new leader in ISR ${after.isr}`);
        assert.ok(!after.isr.includes(before.leader), `killed node left the ISR ${after.isr}`);
        assert.ok(after.isr.length >= 2, `ISR ${after.isr} holds min.insync.replicas`);
        newLeader = after.leader;
      });

      await t.step("the stored log holds the 100 records once each, in order", async () => {
        const stored = await fetchAll(cluster.node(newLeader).kafkaPort, TOPIC, 1);
        assert.deepEqual(
          stored.map((r) => `${r.offset} ${r.key} ${r.value}`),
          Array.from({ length: 2 * COUNT }, (_, i) => `${i} ${key(i)} ${value(i)}`),
        );
      });

      await t.step("the old leader rejoins the ISR after a restart", async () => {
        const restartedAt = performance.now();
        await cluster.restart(before.leader);
        await cluster.waitFor(
          `node ${before.leader} back in the ISR of ${TOPIC}-0`,
          // Asked of the new leader: the restarted node answers from its old image at first.
          async () => (await cluster.leaderOf(TOPIC, 0, newLeader)).isr.includes(before.leader),
          30_000,
        );
        // deno-lint-ignore no-console -- the figure is the point of this line
        console.error(
          `failover: node ${before.leader} back in the ISR ` +
            `${(performance.now() - restartedAt).toFixed(0)} ms after its restart began`,
        );
      });

      await t.step(
        "a fresh consumer reads all 100 from the beginning, once, in order",
        async () => {
          const consumer = kafka.consumer({
            groupId: "failover-check",
            sessionTimeout: 10_000,
            heartbeatInterval: 500,
            maxWaitTimeInMs: 200,
          });
          const seen: string[] = [];
          const { promise: done, resolve } = Promise.withResolvers<void>();
          try {
            await consumer.connect();
            await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
            await consumer.run({
              eachMessage: ({ message, partition }) => {
                seen.push(`${partition} ${message.offset} ${message.key} ${message.value}`);
                if (seen.length >= 2 * COUNT) resolve();
                return Promise.resolve();
              },
            });
            let timer: ReturnType<typeof setTimeout> | undefined;
            const timeout = new Promise<void>((r) => timer = setTimeout(r, 60_000));
            await Promise.race([done, timeout]);
            clearTimeout(timer);
            // A little longer, so a duplicate delivered after the 100th record is seen too.
            await new Promise((r) => setTimeout(r, 500));
          } finally {
            await consumer.disconnect().catch(() => {});
          }
          assert.deepEqual(
            seen,
            Array.from({ length: 2 * COUNT }, (_, i) => `0 ${i} ${key(i)} ${value(i)}`),
          );
        },
      );
    } finally {
      await producer.disconnect().catch(() => {});
    }
  },
});
