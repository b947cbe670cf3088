/**
 * A paused leader (SIGSTOP: its sockets stay open, so only the session timeout can tell)
 * is replaced from the ISR, acks=all produces continue on the new leader, and when the
 * old leader resumes it becomes a follower, truncates nothing acknowledged, and rejoins
 * the ISR with the same data as everyone else.
 */
import assert from "node:assert/strict";
import type { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, decodeRecords, ErrorCode } from "../../lib/protocol/mod.ts";
import { TestCluster } from "../_helpers/cluster.ts";
import { oneRecordProduce } from "../_helpers/produce.ts";

const TOPIC = "paused";
const decoder = new TextDecoder();

async function produce(conn: KafkaConnection, value: string): Promise<number> {
  const r = await conn.request(ApiKey.Produce, 9, oneRecordProduce(TOPIC, 0, value));
  return r.responses[0]!.partitionResponses[0]!.errorCode;
}

async function readAll(conn: KafkaConnection): Promise<string[]> {
  const r = await conn.request(ApiKey.Fetch, 11, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 24,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic: TOPIC,
      partitions: [{
        partition: 0,
        currentLeaderEpoch: -1,
        fetchOffset: 0n,
        logStartOffset: -1n,
        partitionMaxBytes: 1 << 24,
      }],
    }],
    forgottenTopicsData: [],
    rackId: "",
  });
  const p = r.responses[0]!.partitions[0]!;
  assert.equal(p.errorCode, ErrorCode.NONE);
  return decodeRecords(p.records ?? new Uint8Array(0)).map((x) => decoder.decode(x.value!));
}

Deno.test({
  name: "a paused leader is replaced within the session timeout and rejoins when it resumes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using cluster = await TestCluster.start();
    await cluster.createTopic(TOPIC, 1, 3, { "min.insync.replicas": "2" });
    const controller = await cluster.controllerId();
    // Pause a leader that is not the controller (the controller's own pause is an election).
    let before = await cluster.leaderOf(TOPIC, 0, controller);
    if (before.leader === controller) {
      const target = before.replicas.find((r) => r !== controller)!;
      await cluster.stop(controller);
      await cluster.restart(controller);
      await cluster.waitFor(`node ${target} to lead`, async () => {
        before = await cluster.leaderOf(TOPIC, 0, target);
        return before.leader !== -1 && before.isr.length === 3 && before.leader !== controller;
      }, 20_000);
    }
    const oldLeader = before.leader;
    const witness = [1, 2, 3].find((id) => id !== oldLeader && id !== before.leader)!;
    let conn = await cluster.connect(oldLeader);
    for (let i = 0; i < 20; i++) assert.equal(await produce(conn, `before-${i}`), ErrorCode.NONE);
    await conn.close();

    const paused = performance.now();
    cluster.pause(oldLeader);
    const after = await cluster.waitFor(
      "a new leader",
      async () => {
        const p = await cluster.leaderOf(TOPIC, 0, witness);
        return p.leader !== oldLeader && p.leader !== -1 && p;
      },
      10_000,
      20,
    );
    const replacedMs = performance.now() - paused;
    // deno-lint-ignore no-console -- the figure this test exists to show
    console.error(
      `paused leader ${oldLeader} replaced by ${after.leader} after ${replacedMs.toFixed(0)} ms`,
    );
    assert.ok(!after.isr.includes(oldLeader));
    assert.ok(after.leaderEpoch > before.leaderEpoch);
    conn = await cluster.connect(after.leader);
    for (let i = 0; i < 20; i++) assert.equal(await produce(conn, `during-${i}`), ErrorCode.NONE);

    cluster.resume(oldLeader);
    await cluster.waitFor(`node ${oldLeader} back in the ISR`, async () => {
      const p = await cluster.leaderOf(TOPIC, 0, witness);
      return p.isr.includes(oldLeader);
    }, 20_000);
    for (let i = 0; i < 5; i++) assert.equal(await produce(conn, `after-${i}`), ErrorCode.NONE);
    const expected = [
      ...Array.from({ length: 20 }, (_, i) => `before-${i}`),
      ...Array.from({ length: 20 }, (_, i) => `during-${i}`),
      ...Array.from({ length: 5 }, (_, i) => `after-${i}`),
    ];
    assert.deepEqual(await readAll(conn), expected);
    await conn.close();
  },
});
