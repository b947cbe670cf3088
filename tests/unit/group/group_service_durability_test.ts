/**
 * GroupService on a real ReplicaManager: a committed offset shows in OffsetFetch only once
 * its `__consumer_offsets` record is below the high watermark (replicated to the ISR and
 * fsynced), and a coordinator that loads a partition whose tail the ISR does not hold yet
 * answers COORDINATOR_LOAD_IN_PROGRESS until it does.
 */
import assert from "node:assert/strict";
import {
  DEFAULT_GROUP_CONFIG,
  GroupCoordinator,
  groupPartition,
  GroupService,
  OFFSETS_TOPIC,
  OFFSETS_TOPIC_PARTITIONS,
} from "../../../lib/group/mod.ts";
import { MetadataImage, type MetadataRecord } from "../../../lib/metadata/mod.ts";
import { ApiKey, ErrorCode, type OffsetFetchResponse } from "../../../lib/protocol/mod.ts";
import { ReplicaManager } from "../../../lib/replication/mod.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { Random } from "../../../lib/util/random.ts";
import { request, silentLog } from "./_harness.ts";

/** Its offsets partition is 0, the only one the image below has. */
const GROUP = "g9";

/** `__consumer_offsets` partition 0 on brokers 1 (leader) and 2, both in the ISR. */
function offsetsImage(): MetadataImage {
  const records: MetadataRecord[] = [{ type: "Cluster", clusterId: "c" }];
  for (const id of [1, 2]) {
    records.push({
      type: "RegisterBroker",
      brokerId: id,
      incarnationId: `i${id}`,
      brokerEpoch: id,
      // Port 1: nothing listens there, so no replica fetcher reaches a real broker.
      endpoints: [{ host: "127.0.0.1", port: 1 }],
      rack: null,
      fenced: false,
    });
  }
  const topicId = "AAAAAAAAAAAAAAAAAAAAAg";
  records.push({ type: "Topic", name: OFFSETS_TOPIC, topicId, configs: {} });
  records.push({
    type: "Partition",
    topicId,
    partitionId: 0,
    replicas: [1, 2],
    isr: [1, 2],
    leader: 1,
    leaderEpoch: 0,
    partitionEpoch: 0,
  });
  return MetadataImage.EMPTY.applyAll(records);
}

function service(rm: ReplicaManager, clock: ManualClock): GroupService {
  const core = new GroupCoordinator(DEFAULT_GROUP_CONFIG, {
    random: new Random(1),
    log: silentLog,
  });
  return new GroupService(core, { replicas: rm, clock });
}

function commit(groups: GroupService, offset: number): Promise<unknown> {
  const req = request(ApiKey.OffsetCommit, 8, {
    groupId: GROUP,
    generationIdOrMemberEpoch: -1,
    memberId: "",
    topics: [{
      name: "t",
      partitions: [{ partitionIndex: 0, committedOffset: BigInt(offset), committedMetadata: "" }],
    }],
  });
  return groups.call((core, id, now) => core.offsetCommit(id, req, 8, now));
}

function fetched(groups: GroupService): bigint {
  const r = groups.read((core) =>
    core.offsetFetch(
      request(ApiKey.OffsetFetch, 7, {
        groupId: GROUP,
        topics: [{ name: "t", partitionIndexes: [0] }],
      }),
      7,
    )
  ) as OffsetFetchResponse;
  return r.topics[0]!.partitions[0]!.committedOffset;
}

Deno.test("GroupService: offsets become visible when their record reaches the high watermark, and a load waits for it", async (t) => {
  assert.equal(groupPartition(GROUP, OFFSETS_TOPIC_PARTITIONS), 0);
  const dir = await Deno.makeTempDir({ prefix: "tidelog-group-durability-" });
  const clock = new ManualClock(1_700_000_000_000);
  const rm = new ReplicaManager({ topicsDir: dir, nodeId: 1, flush: { kind: "always" }, clock });
  const services: GroupService[] = [];
  try {
    await rm.applyImage(offsetsImage());
    const partition = rm.getPartition(OFFSETS_TOPIC, 0)!;
    const first = service(rm, clock);
    services.push(first);
    first.syncPartitions();
    assert.equal(first.coordinatorError(GROUP), ErrorCode.NONE);

    let answered = false;
    const committed = commit(first, 42).then((r) => {
      answered = true;
      return r;
    });
    await partition.waitLocalDurable(partition.log.logEndOffset - 1);

    await t.step("durable on the leader only: not visible, not answered", () => {
      assert.equal(partition.highWatermark, 0);
      assert.equal(fetched(first), -1n);
      assert.equal(answered, false);
    });

    await t.step("a new coordinator does not load a tail above the high watermark", () => {
      const second = service(rm, clock);
      services.push(second);
      second.syncPartitions();
      assert.equal(second.coordinatorError(GROUP), ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    });

    await t.step("replicated: visible to both, answered", async () => {
      rm.onFollowerFetch(partition, 2, partition.log.logEndOffset);
      assert.equal(partition.highWatermark, partition.log.logEndOffset);
      await committed;
      assert.equal(answered, true);
      assert.equal(fetched(first), 42n);
      // The second coordinator's load runs when the wait resolves.
      await Promise.resolve();
      const second = services[1]!;
      assert.equal(second.coordinatorError(GROUP), ErrorCode.NONE);
      assert.equal(fetched(second), 42n);
    });
  } finally {
    for (const s of services) s.close();
    await rm.close();
    await Deno.remove(dir, { recursive: true });
  }
});
