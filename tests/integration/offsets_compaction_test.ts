/**
 * `__consumer_offsets` is compacted (issue 12): a group that commits 100,000 times leaves
 * one record per partition it commits for once the cleaner has run, so a restarted node
 * replays a bounded log, and the group's committed offset survives the restart.
 */
import assert from "node:assert/strict";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { groupPartition } from "../../lib/group/mod.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";

const GROUP = "many-commits";
const COMMITS = 100_000;
const IN_FLIGHT = 500;

async function offsetsPartitionBytes(conn: KafkaConnection, partition: number): Promise<number> {
  const r = await conn.request(ApiKey.DescribeLogDirs, 1, {
    topics: [{ topic: "__consumer_offsets", partitions: [partition] }],
  });
  return r.results.flatMap((d) => d.topics).flatMap((t) => t.partitions)
    .filter((p) => p.partitionIndex === partition)
    .reduce((n, p) => n + Number(p.partitionSize), 0);
}

async function committed(conn: KafkaConnection): Promise<number> {
  const r = await conn.request(ApiKey.OffsetFetch, 7, {
    groupId: GROUP,
    topics: [{ name: "t", partitionIndexes: [0] }],
    requireStable: false,
  });
  assert.equal(r.errorCode, ErrorCode.NONE);
  return Number(r.topics[0]!.partitions[0]!.committedOffset);
}

Deno.test("__consumer_offsets: 100,000 commits of one group are compacted; a restart replays a bounded log", async () => {
  await using dir = await tempDir();
  const args = ["--log-cleaner-backoff-ms", "200"];
  const node = await NodeProcess.start({ dataDir: nodeDir(dir.path), args });
  const partition = groupPartition(GROUP, 50);
  try {
    let conn = await KafkaConnection.connect("127.0.0.1", node.port);
    await conn.request(ApiKey.CreateTopics, 4, {
      topics: [{ name: "t", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    for (;;) {
      const r = await conn.request(ApiKey.FindCoordinator, 2, { key: GROUP, keyType: 0 });
      if (r.errorCode === ErrorCode.NONE) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Small segments, eager cleaning: the cleaner gets to work while the commits go on.
    const altered = await conn.request(ApiKey.IncrementalAlterConfigs, 1, {
      resources: [{
        resourceType: 2,
        resourceName: "__consumer_offsets",
        configs: [
          { name: "segment.bytes", configOperation: 0, value: "1048576" },
          { name: "min.cleanable.dirty.ratio", configOperation: 0, value: "0.1" },
        ],
      }],
      validateOnly: false,
    });
    assert.equal(altered.responses[0]!.errorCode, ErrorCode.NONE);
    const commit = (offset: number) =>
      conn.request(ApiKey.OffsetCommit, 8, {
        groupId: GROUP,
        generationIdOrMemberEpoch: -1,
        memberId: "",
        groupInstanceId: null,
        topics: [{
          name: "t",
          partitions: [{
            partitionIndex: 0,
            committedOffset: BigInt(offset),
            committedLeaderEpoch: -1,
            committedMetadata: `commit ${offset}`,
          }],
        }],
      });
    for (let i = 0; i < COMMITS; i += IN_FLIGHT) {
      const answers = await Promise.all(
        Array.from({ length: Math.min(IN_FLIGHT, COMMITS - i) }, (_, j) => commit(i + j)),
      );
      for (const a of answers) {
        assert.equal(a.topics[0]!.partitions[0]!.errorCode, ErrorCode.NONE);
      }
    }
    assert.equal(await committed(conn), COMMITS - 1);
    const written = COMMITS * 60; // every commit record is at least 60 bytes
    // The cleaner catches up: the partition shrinks to about its active segment.
    const deadline = Date.now() + 60_000;
    let bytes = await offsetsPartitionBytes(conn, partition);
    while (bytes > 1_200_000 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      bytes = await offsetsPartitionBytes(conn, partition);
    }
    assert.ok(bytes <= 1_200_000, `__consumer_offsets-${partition} holds ${bytes} bytes`);
    assert.ok(bytes < written / 4);
    conn.close();

    await node.stop();
    const restarted = await NodeProcess.start({
      dataDir: nodeDir(dir.path),
      port: node.port,
      args,
    });
    try {
      conn = await KafkaConnection.connect("127.0.0.1", restarted.port);
      let offset = -1;
      for (let tries = 0; tries < 100 && offset !== COMMITS - 1; tries++) {
        try {
          offset = await committed(conn);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      assert.equal(offset, COMMITS - 1);
      conn.close();
    } finally {
      await restarted.stop();
    }
    const log = await restarted.output();
    const loaded = [...log.matchAll(/Loaded (\d+) group records from "?__consumer_offsets-(\d+)/g)]
      .filter((m) => Number(m[2]) === partition).map((m) => Number(m[1]));
    assert.equal(loaded.length, 1, log.slice(-2000));
    assert.ok(loaded[0]! < COMMITS / 4, `replayed ${loaded[0]} records`);
  } finally {
    await node.kill().catch(() => {});
  }
});
