/**
 * Data directory formats: a format-1 directory (metadata in a local record journal) is
 * migrated into the Raft log on start, keeping its topics, their ids and their data.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { crc32c } from "../../lib/util/crc32c.ts";
import { startTestNode } from "../_helpers/in_process_node.ts";
import { decodeRecords } from "../_helpers/fetch_all.ts";
import { buildBatch } from "../unit/log/_batches.ts";

/** Frames records as the format-1 journal did: u32 length | u32 crc32c | JSON. */
function journal(records: unknown[]): Uint8Array {
  const frames = records.map((r) => {
    const payload = new TextEncoder().encode(JSON.stringify(r));
    const frame = new Uint8Array(8 + payload.length);
    new DataView(frame.buffer).setUint32(0, payload.length);
    new DataView(frame.buffer).setUint32(4, crc32c(payload));
    frame.set(payload, 8);
    return frame;
  });
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let pos = 0;
  for (const f of frames) {
    out.set(f, pos);
    pos += f.length;
  }
  return out;
}

Deno.test("data dir: a format-1 directory is migrated into the Raft log with its topics and data", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tidelog-format1-" });
  try {
    // A node of the new build writes the partition's data; then the directory is turned
    // back into format 1: metadata only in metadata/records.log, no Raft log.
    {
      await using node = await startTestNode({ dataDir });
      const conn = await node.connect();
      const res = await conn.request(ApiKey.Produce, 9, {
        acks: -1,
        timeoutMs: 5000,
        topicData: [{
          name: "old",
          partitionData: [{ index: 0, records: buildBatch({ records: [{ value: "kept" }] }) }],
        }],
      });
      assert.equal(res.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.NONE);
    }
    const topicId =
      JSON.parse(await Deno.readTextFile(join(dataDir, "topics", "old-0", "partition.json")))
        .topicId;
    const meta = JSON.parse(await Deno.readTextFile(join(dataDir, "meta.json")));
    await Deno.remove(join(dataDir, "raft"), { recursive: true });
    await Deno.mkdir(join(dataDir, "metadata"), { recursive: true });
    await Deno.writeFile(
      join(dataDir, "metadata", "records.log"),
      journal([
        { type: "Cluster", clusterId: meta.clusterId },
        { type: "Topic", name: "old", topicId, configs: { "retention.ms": "-1" } },
        {
          type: "Partition",
          topicId,
          partitionId: 0,
          replicas: [1],
          isr: [1],
          leader: 1,
          leaderEpoch: 0,
          partitionEpoch: 0,
        },
      ]),
    );
    await Deno.writeTextFile(
      join(dataDir, "meta.json"),
      JSON.stringify({ ...meta, formatVersion: 1 }),
    );

    await using node = await startTestNode({ dataDir });
    const conn = await node.connect();
    const md = await conn.request(ApiKey.Metadata, 12, {
      topics: [{ name: "old" }],
      allowAutoTopicCreation: false,
    });
    assert.equal(md.topics[0]!.errorCode, ErrorCode.NONE);
    assert.equal(md.topics[0]!.topicId, topicId);
    assert.equal(md.clusterId, meta.clusterId);
    const fetched = await conn.request(ApiKey.Fetch, 11, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      topics: [{
        topic: "old",
        partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }],
      }],
    });
    assert.deepEqual(
      decodeRecords(fetched.responses[0]!.partitions[0]!.records!, 0).map((r) => r.value),
      ["kept"],
    );
    assert.equal(JSON.parse(await Deno.readTextFile(join(dataDir, "meta.json"))).formatVersion, 2);
    await Deno.stat(join(dataDir, "metadata", "records.log.migrated"));
    await assert.rejects(Deno.stat(join(dataDir, "metadata", "records.log")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
