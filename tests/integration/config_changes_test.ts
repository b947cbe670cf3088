/**
 * Config changes apply live (IncrementalAlterConfigs through the metadata log):
 * min.insync.replicas set on a topic or as a cluster-wide broker default refuses acks=all
 * writes at once, segment.bytes rolls the next segment, max.message.bytes refuses large
 * batches, and DeleteRecords moves the log start for consumers.
 */
import assert from "node:assert/strict";
import type { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { startTestNode } from "../_helpers/in_process_node.ts";
import { buildBatch, buildSizedBatch } from "../unit/log/_batches.ts";

function produce(conn: KafkaConnection, topic: string, records: Uint8Array, acks = -1) {
  return conn.request(ApiKey.Produce, 9, {
    acks,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  }).then((r) => r.responses[0]!.partitionResponses[0]!);
}

async function alter(
  conn: KafkaConnection,
  resourceType: number,
  resourceName: string,
  configs: { name: string; op: number; value: string | null }[],
): Promise<number> {
  const res = await conn.request(ApiKey.IncrementalAlterConfigs, 1, {
    resources: [{
      resourceType,
      resourceName,
      configs: configs.map((c) => ({ name: c.name, configOperation: c.op, value: c.value })),
    }],
    validateOnly: false,
  });
  return res.responses[0]!.errorCode;
}

Deno.test("config changes apply live", async (t) => {
  await using node = await startTestNode();
  const conn = await node.connect();
  const created = await conn.request(ApiKey.CreateTopics, 7, {
    topics: [{
      name: "live",
      numPartitions: 1,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }],
    timeoutMs: 5000,
    validateOnly: false,
  });
  assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE);

  await t.step("min.insync.replicas on the topic, then as a cluster default", async () => {
    assert.equal(
      (await produce(conn, "live", buildBatch({ records: [{ value: "v" }] }))).errorCode,
      ErrorCode.NONE,
    );
    assert.equal(
      await alter(conn, 2, "live", [{ name: "min.insync.replicas", op: 0, value: "2" }]),
      ErrorCode.NONE,
    );
    assert.equal(
      (await produce(conn, "live", buildBatch({ records: [{ value: "v" }] }))).errorCode,
      ErrorCode.NOT_ENOUGH_REPLICAS,
    );
    // acks=1 does not need the ISR.
    assert.equal(
      (await produce(conn, "live", buildBatch({ records: [{ value: "v" }] }), 1)).errorCode,
      ErrorCode.NONE,
    );
    assert.equal(
      await alter(conn, 2, "live", [{ name: "min.insync.replicas", op: 1, value: null }]),
      ErrorCode.NONE,
    );
    assert.equal(
      (await produce(conn, "live", buildBatch({ records: [{ value: "v" }] }))).errorCode,
      ErrorCode.NONE,
    );
    assert.equal(
      await alter(conn, 4, "", [{ name: "min.insync.replicas", op: 0, value: "2" }]),
      ErrorCode.NONE,
    );
    assert.equal(
      (await produce(conn, "live", buildBatch({ records: [{ value: "v" }] }))).errorCode,
      ErrorCode.NOT_ENOUGH_REPLICAS,
    );
    assert.equal(
      await alter(conn, 4, "", [{ name: "min.insync.replicas", op: 1, value: null }]),
      ErrorCode.NONE,
    );
    assert.equal(
      (await produce(conn, "live", buildBatch({ records: [{ value: "v" }] }))).errorCode,
      ErrorCode.NONE,
    );
  });

  await t.step("segment.bytes rolls segments from the next append", async () => {
    const segments = async () => {
      let n = 0;
      for await (const e of Deno.readDir(`${node.dataDir}/topics/live-0`)) {
        if (e.name.endsWith(".log")) n++;
      }
      return n;
    };
    assert.equal(await segments(), 1);
    assert.equal(
      await alter(conn, 2, "live", [{ name: "segment.bytes", op: 0, value: "1024" }]),
      ErrorCode.NONE,
    );
    for (let i = 0; i < 4; i++) {
      assert.equal(
        (await produce(conn, "live", buildSizedBatch(1, 800))).errorCode,
        ErrorCode.NONE,
      );
    }
    assert.ok(await segments() >= 3, `only ${await segments()} segment(s)`);
  });

  await t.step("max.message.bytes refuses a larger batch at once", async () => {
    assert.equal(
      await alter(conn, 4, "1", [{ name: "message.max.bytes", op: 0, value: "500" }]),
      ErrorCode.NONE,
    );
    assert.equal(
      (await produce(conn, "live", buildSizedBatch(1, 800))).errorCode,
      ErrorCode.MESSAGE_TOO_LARGE,
    );
    assert.equal(
      await alter(conn, 4, "1", [{ name: "message.max.bytes", op: 1, value: null }]),
      ErrorCode.NONE,
    );
    assert.equal((await produce(conn, "live", buildSizedBatch(1, 800))).errorCode, ErrorCode.NONE);
  });

  await t.step("DeleteRecords: the log start moves, reads below it are out of range", async () => {
    const deleted = await conn.request(ApiKey.DeleteRecords, 2, {
      topics: [{ name: "live", partitions: [{ partitionIndex: 0, offset: 5n }] }],
      timeoutMs: 5000,
    });
    assert.deepEqual(deleted.topics[0]!.partitions[0], {
      partitionIndex: 0,
      lowWatermark: 5n,
      errorCode: ErrorCode.NONE,
    });
    const offsets = await conn.request(ApiKey.ListOffsets, 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{
        name: "live",
        partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -2n }],
      }],
    });
    assert.equal(offsets.topics[0]!.partitions[0]!.offset, 5n);
    const fetched = await conn.request(ApiKey.Fetch, 11, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{
        topic: "live",
        partitions: [{ partition: 0, fetchOffset: 2n, partitionMaxBytes: 1 << 20 }],
      }],
    });
    assert.equal(fetched.responses[0]!.partitions[0]!.errorCode, ErrorCode.OFFSET_OUT_OF_RANGE);
    // As Kafka, a consumer's error answer carries no offsets (-1); it asks ListOffsets.
    assert.equal(fetched.responses[0]!.partitions[0]!.logStartOffset, -1n);
    const past = await conn.request(ApiKey.DeleteRecords, 0, {
      topics: [
        {
          name: "live",
          partitions: [{ partitionIndex: 0, offset: 1000n }, { partitionIndex: 3, offset: 1n }],
        },
        { name: "missing", partitions: [{ partitionIndex: 0, offset: 1n }] },
      ],
      timeoutMs: 5000,
    });
    assert.deepEqual(past.topics.flatMap((t) => t.partitions.map((p) => p.errorCode)), [
      ErrorCode.OFFSET_OUT_OF_RANGE,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ]);
    // The log start survives a restart.
    await node.restart();
    const again = await (await node.connect()).request(ApiKey.ListOffsets, 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{
        name: "live",
        partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -2n }],
      }],
    });
    assert.equal(again.topics[0]!.partitions[0]!.offset, 5n);
  });
});
