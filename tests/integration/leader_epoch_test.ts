/**
 * OffsetForLeaderEpoch (key 23) end to end: raw requests over TCP against an in-process
 * node (every version, the latest epoch's end at the log end, unknown epochs, the
 * currentLeaderEpoch fence, missing partitions), the leader-epoch-checkpoint file on disk
 * and across a restart, and a librdkafka consumer group resuming after a restart (the
 * installed librdkafka 2.0.2 predates its KIP-320 support in 2.1 and does not send key 23
 * yet; the test checks that listing the API changes nothing for it).
 */
import assert from "node:assert/strict";
import type { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, ErrorCode, ZERO_UUID } from "../../lib/protocol/mod.ts";
import type { OffsetForLeaderEpochRequest } from "../../lib/protocol/mod.ts";
import { LeaderEpochCache } from "../../lib/replication/mod.ts";
import type { Partition } from "../../lib/replication/mod.ts";
import { offsetForLeaderEpochHandler } from "../../lib/server/handlers/offset_for_leader_epoch.ts";
import type { RequestContext } from "../../lib/server/handler.ts";
import type { BrokerServices } from "../../lib/server/services.ts";
import { HAVE_CONFLUENT, needs, PYTHON, run } from "../_helpers/clients.ts";
import { startTestNode } from "../_helpers/in_process_node.ts";
import { buildBatch } from "../unit/log/_batches.ts";

async function createTopic(conn: KafkaConnection, name: string, partitions: number) {
  const res = await conn.request(ApiKey.CreateTopics, 7, {
    topics: [{ name, numPartitions: partitions, replicationFactor: -1 }],
    timeoutMs: 5000,
  });
  assert.equal(res.topics[0]!.errorCode, ErrorCode.NONE);
}

async function produce(conn: KafkaConnection, topic: string, count: number, partition = 0) {
  const records = buildBatch({
    records: Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: `v${i}` })),
  });
  const res = await conn.request(ApiKey.Produce, 9, {
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
  assert.equal(res.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.NONE);
}

type Query = { topic: string; partition: number; leaderEpoch: number; current?: number };

async function offsetForLeaderEpoch(conn: KafkaConnection, version: number, queries: Query[]) {
  const res = await conn.request(ApiKey.OffsetForLeaderEpoch, version, {
    replicaId: -1,
    topics: queries.map((q) => ({
      topic: q.topic,
      partitions: [{
        partition: q.partition,
        leaderEpoch: q.leaderEpoch,
        currentLeaderEpoch: q.current ?? -1,
      }],
    })),
  });
  return res.topics.map((t) => {
    const p = t.partitions[0]!;
    return {
      topic: t.topic,
      partition: p.partition,
      errorCode: p.errorCode,
      leaderEpoch: p.leaderEpoch,
      endOffset: Number(p.endOffset),
    };
  });
}

Deno.test("OffsetForLeaderEpoch: served end to end", async (t) => {
  await using node = await startTestNode();
  const conn = await node.connect();
  await createTopic(conn, "epochs", 2);
  await produce(conn, "epochs", 5);
  await produce(conn, "epochs", 3);

  await t.step("ApiVersions lists key 23, versions 0-4", async () => {
    const res = await conn.request(ApiKey.ApiVersions, 3, {
      clientSoftwareName: "test",
      clientSoftwareVersion: "1",
    });
    const k = res.apiKeys.find((a) => a.apiKey === ApiKey.OffsetForLeaderEpoch);
    assert.deepEqual([k?.minVersion, k?.maxVersion], [0, 4]);
  });

  for (const version of [0, 1, 2, 3, 4]) {
    await t.step(`v${version}: epoch 0 ends at the log end`, async () => {
      const [r] = await offsetForLeaderEpoch(conn, version, [
        { topic: "epochs", partition: 0, leaderEpoch: 0, current: 0 },
      ]);
      assert.deepEqual(r, {
        topic: "epochs",
        partition: 0,
        errorCode: ErrorCode.NONE,
        // v0 has no leaderEpoch in the response: it decodes as the default -1.
        leaderEpoch: version === 0 ? -1 : 0,
        endOffset: 8,
      });
    });
  }

  await t.step("an empty partition: epoch 0 ends at 0", async () => {
    const [r] = await offsetForLeaderEpoch(conn, 4, [
      { topic: "epochs", partition: 1, leaderEpoch: 0 },
    ]);
    assert.deepEqual([r!.errorCode, r!.leaderEpoch, r!.endOffset], [ErrorCode.NONE, 0, 0]);
  });

  await t.step("an epoch above the latest and UNDEFINED_EPOCH answer -1/-1", async () => {
    const rs = await offsetForLeaderEpoch(conn, 3, [
      { topic: "epochs", partition: 0, leaderEpoch: 5 },
      { topic: "epochs", partition: 0, leaderEpoch: -1 },
    ]);
    for (const r of rs) {
      assert.deepEqual([r.errorCode, r.leaderEpoch, r.endOffset], [ErrorCode.NONE, -1, -1]);
    }
  });

  await t.step("a newer currentLeaderEpoch gets UNKNOWN_LEADER_EPOCH", async () => {
    const [r] = await offsetForLeaderEpoch(conn, 2, [
      { topic: "epochs", partition: 0, leaderEpoch: 0, current: 1 },
    ]);
    assert.deepEqual([r!.errorCode, r!.endOffset], [ErrorCode.UNKNOWN_LEADER_EPOCH, -1]);
  });

  await t.step("missing topics and partitions get UNKNOWN_TOPIC_OR_PARTITION", async () => {
    const rs = await offsetForLeaderEpoch(conn, 4, [
      { topic: "nope", partition: 0, leaderEpoch: 0 },
      { topic: "epochs", partition: 7, leaderEpoch: 0 },
    ]);
    assert.deepEqual(rs.map((r) => [r.topic, r.partition, r.errorCode, r.endOffset]), [
      ["nope", 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1],
      ["epochs", 7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1],
    ]);
  });

  const file = `${node.dataDir}/topics/epochs-0/leader-epoch-checkpoint`;
  await t.step("the checkpoint file holds epoch 0 at offset 0", () => {
    assert.equal(Deno.readTextFileSync(file), "0\n1\n0 0\n");
    assert.equal(
      Deno.readTextFileSync(`${node.dataDir}/topics/epochs-1/leader-epoch-checkpoint`),
      "0\n1\n0 0\n",
    );
  });

  await t.step("the cache survives a restart, and a missing file is rebuilt", async () => {
    // A restart re-registers the broker: the controller fences the old registration
    // (leader -1) and elects it again on unfencing, so leadership comes back in a new
    // epoch that starts at the log end (8).
    await node.restart();
    const c2 = await node.connect();
    let [r] = await offsetForLeaderEpoch(c2, 4, [{
      topic: "epochs",
      partition: 0,
      leaderEpoch: 0,
    }]);
    assert.deepEqual([r!.leaderEpoch, r!.endOffset], [0, 8]);
    const epochAfterRestart = await currentLeaderEpoch(c2, "epochs");
    assert.ok(epochAfterRestart > 0);
    assert.equal(Deno.readTextFileSync(file), `0\n2\n0 0\n${epochAfterRestart} 8\n`);

    Deno.removeSync(file);
    await node.restart();
    const c3 = await node.connect();
    [r] = await offsetForLeaderEpoch(c3, 4, [{ topic: "epochs", partition: 0, leaderEpoch: 0 }]);
    assert.deepEqual([r!.leaderEpoch, r!.endOffset], [0, 8]);
    // Rebuilt from the batches (all of epoch 0), plus the epoch of this leadership.
    const epoch = await currentLeaderEpoch(c3, "epochs");
    assert.ok(epoch > epochAfterRestart);
    assert.equal(Deno.readTextFileSync(file), `0\n2\n0 0\n${epoch} 8\n`);
    await produce(c3, "epochs", 2);
    [r] = await offsetForLeaderEpoch(c3, 4, [{ topic: "epochs", partition: 0, leaderEpoch: 0 }]);
    assert.deepEqual([r!.leaderEpoch, r!.endOffset], [0, 8]);
    [r] = await offsetForLeaderEpoch(c3, 4, [{
      topic: "epochs",
      partition: 0,
      leaderEpoch: epoch,
    }]);
    assert.deepEqual([r!.leaderEpoch, r!.endOffset], [epoch, 10]);
  });
});

Deno.test("OffsetForLeaderEpoch: retention moves the epoch's start with the log start", async () => {
  await using node = await startTestNode();
  const conn = await node.connect();
  const res = await conn.request(ApiKey.CreateTopics, 7, {
    topics: [{
      name: "ret",
      numPartitions: 1,
      replicationFactor: -1,
      configs: [{ name: "segment.bytes", value: "2000" }, {
        name: "retention.bytes",
        value: "5000",
      }],
    }],
    timeoutMs: 5000,
  });
  assert.equal(res.topics[0]!.errorCode, ErrorCode.NONE);
  for (let i = 0; i < 20; i++) {
    const records = buildBatch({ records: [{ value: "x".repeat(900) }] });
    const r = await conn.request(ApiKey.Produce, 9, {
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: "ret", partitionData: [{ index: 0, records }] }],
    });
    assert.equal(r.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.NONE);
  }
  await node.node.runRetention();
  const start = Number(
    (await conn.request(ApiKey.ListOffsets, 7, {
      replicaId: -1,
      topics: [{ name: "ret", partitions: [{ partitionIndex: 0, timestamp: -2n }] }],
    })).topics[0]!.partitions[0]!.offset,
  );
  assert.ok(start > 0, `old segments deleted (log start ${start})`);
  const file = `${node.dataDir}/topics/ret-0/leader-epoch-checkpoint`;
  // The file is rewritten in the background after retention; a restart flushes it.
  await node.restart();
  const epoch = await currentLeaderEpoch(await node.connect(), "ret");
  assert.equal(Deno.readTextFileSync(file), `0\n2\n0 ${start}\n${epoch} 20\n`);
  const [r] = await offsetForLeaderEpoch(await node.connect(), 4, [
    { topic: "ret", partition: 0, leaderEpoch: 0 },
  ]);
  assert.deepEqual([r!.leaderEpoch, r!.endOffset], [0, 20]);
});

/** The leader epoch Metadata reports for partition 0 of `topic`. */
async function currentLeaderEpoch(conn: KafkaConnection, topic: string): Promise<number> {
  const md = await conn.request(ApiKey.Metadata, 12, {
    topics: [{ name: topic, topicId: ZERO_UUID }],
    allowAutoTopicCreation: false,
  });
  return md.topics[0]!.partitions[0]!.leaderEpoch;
}

/** A handler context over one fake partition led here at `leaderEpoch`. */
function fakeContext(partition: Partition): RequestContext {
  const services = {
    config: { nodeId: 1 },
    replicas: {
      getPartition: (topic: string, id: number) =>
        topic === partition.topic && id === partition.partitionId ? partition : undefined,
    },
    metadata: {
      image: {
        topic: (name: string) =>
          name === partition.topic ? { partitions: [{ leader: 1 }, { leader: 2 }] } : undefined,
      },
    },
  } as unknown as BrokerServices;
  return { services, header: { apiVersion: 4 } } as unknown as RequestContext;
}

Deno.test("OffsetForLeaderEpoch: epoch fencing after leader changes (handler)", async (t) => {
  // Epoch 0 wrote 0-9, epoch 2 wrote 10-14, epoch 3 (current) writes from 15; LEO 20.
  const cache = new LeaderEpochCache([
    { epoch: 0, startOffset: 0 },
    { epoch: 2, startOffset: 10 },
    { epoch: 3, startOffset: 15 },
  ]);
  const partition = {
    topic: "t",
    partitionId: 0,
    leaderEpoch: 3,
    isLeader: true,
    leaderEpochCache: cache,
    log: { logEndOffset: 20 },
  } as unknown as Partition;
  const ctx = fakeContext(partition);

  async function ask(partitionId: number, leaderEpoch: number, current: number) {
    const req: OffsetForLeaderEpochRequest = {
      replicaId: -1,
      topics: [{
        topic: "t",
        partitions: [{ partition: partitionId, leaderEpoch, currentLeaderEpoch: current }],
      }],
    };
    const reply = await offsetForLeaderEpochHandler.handle(ctx, req);
    assert.equal(reply.kind, "respond");
    const res = await (reply as { response: unknown }).response as {
      topics: { partitions: { errorCode: number; leaderEpoch: number; endOffset: bigint }[] }[];
    };
    const p = res.topics[0]!.partitions[0]!;
    return [p.errorCode, p.leaderEpoch, Number(p.endOffset)];
  }

  const cases: [string, number, number, number, number[]][] = [
    ["an older current epoch is fenced", 0, 0, 2, [ErrorCode.FENCED_LEADER_EPOCH, -1, -1]],
    ["a newer current epoch is unknown", 0, 0, 4, [ErrorCode.UNKNOWN_LEADER_EPOCH, -1, -1]],
    ["epoch 0 ends where epoch 2 starts", 0, 0, 3, [ErrorCode.NONE, 0, 10]],
    ["unknown epoch 1: largest epoch <= 1 is 0", 0, 1, -1, [ErrorCode.NONE, 0, 10]],
    ["epoch 2 ends where epoch 3 starts", 0, 2, 3, [ErrorCode.NONE, 2, 15]],
    ["the current epoch ends at the LEO", 0, 3, 3, [ErrorCode.NONE, 3, 20]],
    ["a partition led elsewhere", 1, 0, -1, [ErrorCode.NOT_LEADER_OR_FOLLOWER, -1, -1]],
  ];
  for (const [name, id, epoch, current, expected] of cases) {
    await t.step(name, async () => {
      assert.deepEqual(await ask(id, epoch, current), expected);
    });
  }
});

const CONSUMER_SCRIPT = `
import json, sys
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, count, commit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-epochs", "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.subscribe([topic])
got, errors = [], []
while len(got) < count:
    m = c.poll(10)
    if m is None:
        errors.append("timeout"); break
    if m.error():
        errors.append(str(m.error())); continue
    got.append(m.offset())
if commit:
    c.commit(asynchronous=False)
c.close()
print(json.dumps({"offsets": got, "errors": errors}))
`;

Deno.test({
  name: "OffsetForLeaderEpoch: a librdkafka group resumes from its commit after a restart",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn() {
    await using node = await startTestNode();
    const conn = await node.connect();
    await createTopic(conn, "resume", 1);
    await produce(conn, "resume", 10);
    const bootstrap = `127.0.0.1:${node.port}`;
    const consume = async (count: number, commit: boolean) => {
      const out = await run(PYTHON, [
        "-c",
        CONSUMER_SCRIPT,
        bootstrap,
        "resume",
        `${count}`,
        commit ? "1" : "0",
      ], {
        timeoutMs: 60_000,
      });
      return JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    };
    const first = await consume(10, true);
    assert.deepEqual(first.errors, []);
    assert.equal(first.offsets.length, 10);
    await node.restart();
    const c2 = await node.connect();
    await produce(c2, "resume", 4);
    const second = await consume(4, false);
    assert.deepEqual(second.errors, []);
    assert.deepEqual(second.offsets, [10, 11, 12, 13]);
  },
});
