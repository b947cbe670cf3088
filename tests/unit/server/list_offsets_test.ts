/**
 * ListOffsets decides as Kafka's ReplicaManager.fetchOffset: only the leader answers
 * (`fetchOnlyFromLeader` unless the replica id is -2, DEBUGGING_REPLICA_ID); a consumer
 * (replica id -1) sees offsets below the high watermark, anyone else up to the log end;
 * a consumer of a leader whose high watermark lags the start of its epoch gets
 * OFFSET_NOT_AVAILABLE (LEADER_NOT_AVAILABLE before v5).
 */
import assert from "node:assert/strict";
import type { MetadataImage } from "../../../lib/metadata/mod.ts";
import {
  ApiKey,
  decodeRequestBody,
  encodeRequestBody,
  ErrorCode,
  type ListOffsetsResponse,
} from "../../../lib/protocol/mod.ts";
import { ReplicaManager } from "../../../lib/replication/mod.ts";
import { systemTimers } from "../../../lib/runtime/mod.ts";
import type { RequestContext } from "../../../lib/server/handler.ts";
import { listOffsetsHandler } from "../../../lib/server/handlers/list_offsets.ts";
import type { BrokerServices } from "../../../lib/server/services.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { onePartitionImage, TEST_TOPIC_ID } from "../../_helpers/images.ts";
import { buildBatch } from "../log/_batches.ts";

const CONSUMER = -1;
const DEBUG = -2;
const LATEST = -1n;
const EARLIEST = -2n;
const MAX_TIMESTAMP = -3n;

/** Topic "t", partition 0 on brokers 1 and 2 (both in the ISR), led by `leader` at `epoch`. */
function image(leader: number, epoch = 0): MetadataImage {
  const base = onePartitionImage([1, 2], leader);
  if (epoch === 0) return base;
  return base.apply({
    type: "Partition",
    topicId: TEST_TOPIC_ID,
    partitionId: 0,
    replicas: [1, 2],
    isr: [1, 2],
    leader,
    leaderEpoch: epoch,
    partitionEpoch: epoch,
  });
}

type Query = {
  replicaId: number;
  timestamp: bigint;
  version?: number;
  maxNumOffsets?: number;
  topic?: string;
  partition?: number;
};
type PartitionAnswer = ListOffsetsResponse["topics"][number]["partitions"][number];

/** Node 1 with topic "t" (led by node 1 until `setImage` says otherwise). */
async function withNode1(
  fn: (node: {
    rm: ReplicaManager;
    setImage: (img: MetadataImage) => Promise<void>;
    listOffsets: (q: Query) => Promise<PartitionAnswer>;
  }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tidelog-list-offsets-" });
  const rm = new ReplicaManager({
    topicsDir: dir,
    nodeId: 1,
    flush: { kind: "always" },
    clock: new ManualClock(1_700_000_000_000),
  });
  let current = image(1);
  const services = {
    replicas: rm,
    timers: systemTimers,
    clock: new ManualClock(1_700_000_001_000),
    metadata: {
      get image() {
        return current;
      },
    },
  } as unknown as BrokerServices;
  const setImage = async (img: MetadataImage) => {
    current = img;
    await rm.applyImage(img);
  };
  try {
    await setImage(current);
    await fn({ rm, setImage, listOffsets: (q) => listOffsets(services, q) });
  } finally {
    await rm.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function listOffsets(services: BrokerServices, q: Query): Promise<PartitionAnswer> {
  const version = q.version ?? 7;
  const req = decodeRequestBody(
    ApiKey.ListOffsets,
    version,
    encodeRequestBody(ApiKey.ListOffsets, version, {
      replicaId: q.replicaId,
      isolationLevel: 0,
      topics: [{
        name: q.topic ?? "t",
        partitions: [{
          partitionIndex: q.partition ?? 0,
          currentLeaderEpoch: -1,
          timestamp: q.timestamp,
          maxNumOffsets: q.maxNumOffsets ?? 1,
        }],
      }],
    }),
  );
  const ctx = { header: { apiVersion: version }, services } as unknown as RequestContext;
  const reply = await listOffsetsHandler.handle(ctx, req);
  assert.equal(reply.kind, "respond");
  const response = await (reply as unknown as { response: ListOffsetsResponse }).response;
  return response.topics[0]!.partitions[0]!;
}

function append(rm: ReplicaManager, count: number): void {
  const p = rm.getPartition("t", 0)!;
  const records = Array.from({ length: count }, (_, i) => ({
    value: `v${i}`,
    timestampMs: 1_700_000_000_000 + i,
  }));
  rm.appendAsLeader(p, buildBatch({ records }));
}

Deno.test("ListOffsets on a follower answers NOT_LEADER_OR_FOLLOWER unless the replica id is -2 (debug)", async () => {
  await withNode1(async ({ setImage, listOffsets }) => {
    await setImage(image(2));
    for (const replicaId of [CONSUMER, 2, 7]) {
      for (const timestamp of [LATEST, EARLIEST, MAX_TIMESTAMP, 0n]) {
        const p = await listOffsets({ replicaId, timestamp });
        assert.equal(
          p.errorCode,
          ErrorCode.NOT_LEADER_OR_FOLLOWER,
          `replica id ${replicaId}, timestamp ${timestamp}`,
        );
        assert.equal(p.offset, -1n);
      }
    }
    const debug = await listOffsets({ replicaId: DEBUG, timestamp: LATEST });
    assert.equal(debug.errorCode, ErrorCode.NONE);
    assert.equal(debug.offset, 0n);
  });
});

Deno.test("ListOffsets: UNKNOWN_TOPIC_OR_PARTITION only for what the image lacks", async () => {
  await withNode1(async ({ setImage, listOffsets }) => {
    assert.equal(
      (await listOffsets({ replicaId: CONSUMER, timestamp: LATEST, topic: "nope" })).errorCode,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    assert.equal(
      (await listOffsets({ replicaId: CONSUMER, timestamp: LATEST, partition: 1 })).errorCode,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    // The partition exists on other brokers only: the client's metadata is stale.
    await setImage(onePartitionImage([2, 3], 2));
    assert.equal(
      (await listOffsets({ replicaId: CONSUMER, timestamp: LATEST })).errorCode,
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
    );
  });
});

Deno.test("ListOffsets on the leader: consumers see the high watermark, replicas and debug the log end", async (t) => {
  await withNode1(async ({ rm, setImage, listOffsets }) => {
    append(rm, 3); // broker 2 has not fetched: the high watermark stays at 0
    const p = rm.getPartition("t", 0)!;
    await p.waitLocalDurable(2);
    assert.equal(p.highWatermark, 0);
    await t.step("LATEST", async () => {
      assert.equal((await listOffsets({ replicaId: CONSUMER, timestamp: LATEST })).offset, 0n);
      assert.equal((await listOffsets({ replicaId: 2, timestamp: LATEST })).offset, 3n);
      assert.equal((await listOffsets({ replicaId: DEBUG, timestamp: LATEST })).offset, 3n);
    });
    await t.step(
      "MAX_TIMESTAMP and timestamps are bounded by the high watermark for consumers",
      async () => {
        const consumerMax = await listOffsets({ replicaId: CONSUMER, timestamp: MAX_TIMESTAMP });
        assert.deepEqual([consumerMax.errorCode, consumerMax.offset], [ErrorCode.NONE, -1n]);
        assert.equal(
          (await listOffsets({ replicaId: DEBUG, timestamp: MAX_TIMESTAMP })).offset,
          2n,
        );
        assert.equal((await listOffsets({ replicaId: CONSUMER, timestamp: 0n })).offset, -1n);
        assert.equal((await listOffsets({ replicaId: 2, timestamp: 0n })).offset, 0n);
      },
    );
    await t.step("a new epoch whose start the high watermark has not reached", async () => {
      await setImage(image(1, 1)); // epoch 1 starts at offset 3
      const v5 = await listOffsets({ replicaId: CONSUMER, timestamp: LATEST, version: 5 });
      assert.equal(v5.errorCode, ErrorCode.OFFSET_NOT_AVAILABLE);
      const v4 = await listOffsets({ replicaId: CONSUMER, timestamp: LATEST, version: 4 });
      assert.equal(v4.errorCode, ErrorCode.LEADER_NOT_AVAILABLE);
      const ts = await listOffsets({ replicaId: CONSUMER, timestamp: 1n });
      assert.equal(ts.errorCode, ErrorCode.OFFSET_NOT_AVAILABLE);
      // The log start needs no high watermark; nor do replicas.
      assert.equal((await listOffsets({ replicaId: CONSUMER, timestamp: EARLIEST })).offset, 0n);
      assert.equal((await listOffsets({ replicaId: 2, timestamp: LATEST })).offset, 3n);
    });
  });
});

Deno.test("ListOffsets v0 answers old-style offsets: the log end or segment starts, never above a consumer's high watermark", async () => {
  await withNode1(async ({ rm, listOffsets }) => {
    append(rm, 3);
    const p = rm.getPartition("t", 0)!;
    await p.waitLocalDurable(2);
    const v0 = (q: Omit<Query, "version">) => listOffsets({ ...q, version: 0 });
    // Broker 2 has not fetched: the high watermark is 0, the log end 3.
    const latest = await v0({ replicaId: CONSUMER, timestamp: LATEST, maxNumOffsets: 5 });
    assert.equal(latest.errorCode, ErrorCode.NONE);
    // Kafka's hw +: offsets.dropWhile(_ > hw): the high watermark, then the segment start.
    assert.deepEqual(latest.oldStyleOffsets, [0n, 0n]);
    assert.deepEqual(
      (await v0({ replicaId: 2, timestamp: LATEST, maxNumOffsets: 5 })).oldStyleOffsets,
      [3n, 0n],
    );
    assert.deepEqual(
      (await v0({ replicaId: CONSUMER, timestamp: EARLIEST, maxNumOffsets: 1 })).oldStyleOffsets,
      [0n],
    );
    assert.deepEqual(
      (await v0({ replicaId: 2, timestamp: LATEST, maxNumOffsets: 1 })).oldStyleOffsets,
      [3n],
    );
  });
});
