/**
 * Config changes and elections planned by the controller: IncrementalAlterConfigs and
 * AlterConfigs for topics and brokers (Kafka's error codes), how broker-level values
 * become topic defaults, snapshots keeping broker configs, and ElectLeaders.
 */
import assert from "node:assert/strict";
import {
  AlterConfigOp,
  ElectionType,
  MetadataImage,
  planAlterConfigs,
  planElectLeader,
  planIncrementalAlterConfigs,
  resolveTopicConfig,
  TOPIC_CONFIG_DEFS,
  validateTopicConfigs,
} from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { TidelogError } from "../../../lib/util/errors.ts";
import { onePartitionImage, TEST_TOPIC_ID } from "../../_helpers/images.ts";

const TOPIC = { resourceType: 2, resourceName: "t" };
const BROKER_1 = { resourceType: 4, resourceName: "1" };
const CLUSTER = { resourceType: 4, resourceName: "" };

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof TidelogError) return err.code;
    throw err;
  }
  return ErrorCode.NONE;
}

function applyIncremental(
  image: MetadataImage,
  resource: { resourceType: number; resourceName: string },
  ops: { name: string; op: number; value: string | null }[],
): MetadataImage {
  return image.applyAll(planIncrementalAlterConfigs(image, resource, ops));
}

Deno.test("IncrementalAlterConfigs on a topic: SET, DELETE, APPEND, SUBTRACT", () => {
  let image = onePartitionImage([1, 2, 3], 1);
  image = applyIncremental(image, TOPIC, [
    { name: "retention.ms", op: AlterConfigOp.SET, value: " 1000 " },
    { name: "unclean.leader.election.enable", op: AlterConfigOp.SET, value: "TRUE" },
  ]);
  assert.deepEqual(image.topic("t")!.configs, {
    "retention.ms": "1000",
    "unclean.leader.election.enable": "true",
  });
  image = applyIncremental(image, TOPIC, [
    { name: "leader.replication.throttled.replicas", op: AlterConfigOp.APPEND, value: "0:1,1:2" },
    { name: "retention.ms", op: AlterConfigOp.DELETE, value: null },
  ]);
  image = applyIncremental(image, TOPIC, [
    { name: "leader.replication.throttled.replicas", op: AlterConfigOp.APPEND, value: "1:2,2:3" },
  ]);
  assert.equal(image.topic("t")!.configs["leader.replication.throttled.replicas"], "0:1,1:2,2:3");
  image = applyIncremental(image, TOPIC, [
    { name: "leader.replication.throttled.replicas", op: AlterConfigOp.SUBTRACT, value: "1:2" },
  ]);
  assert.equal(image.topic("t")!.configs["leader.replication.throttled.replicas"], "0:1,2:3");
  assert.equal(image.topic("t")!.configs["retention.ms"], undefined);
  // Deleting a key that is not set changes nothing.
  assert.deepEqual(
    planIncrementalAlterConfigs(image, TOPIC, [{ name: "segment.ms", op: 1, value: null }]),
    [],
  );
});

Deno.test("IncrementalAlterConfigs refuses what Kafka refuses", () => {
  const image = onePartitionImage([1], 1);
  const plan = (ops: { name: string; op: number; value: string | null }[], r = TOPIC) => () =>
    planIncrementalAlterConfigs(image, r, ops);
  assert.equal(code(plan([{ name: "no.such", op: 0, value: "1" }])), ErrorCode.INVALID_CONFIG);
  assert.equal(code(plan([{ name: "no.such", op: 1, value: null }])), ErrorCode.INVALID_CONFIG);
  assert.equal(code(plan([{ name: "retention.ms", op: 0, value: "x" }])), ErrorCode.INVALID_CONFIG);
  assert.equal(code(plan([{ name: "retention.ms", op: 2, value: "1" }])), ErrorCode.INVALID_CONFIG);
  assert.equal(
    code(plan([{ name: "retention.ms", op: 0, value: null }])),
    ErrorCode.INVALID_REQUEST,
  );
  assert.equal(
    code(plan([{ name: "retention.ms", op: 9, value: "1" }])),
    ErrorCode.INVALID_REQUEST,
  );
  assert.equal(
    code(
      plan([{ name: "retention.ms", op: 0, value: "1" }, {
        name: "retention.ms",
        op: 1,
        value: null,
      }]),
    ),
    ErrorCode.INVALID_REQUEST,
  );
  assert.equal(
    code(
      plan([{ name: "retention.ms", op: 0, value: "1" }], { resourceType: 2, resourceName: "x" }),
    ),
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  );
  assert.equal(
    code(
      plan([{ name: "retention.ms", op: 0, value: "1" }], { resourceType: 8, resourceName: "1" }),
    ),
    ErrorCode.INVALID_REQUEST,
  );
  assert.equal(code(plan([{ name: "cleanup.policy", op: 0, value: "compact" }])), ErrorCode.NONE);
  // Valid Kafka values for behaviour Tidelog lacks are refused rather than ignored.
  assert.equal(
    code(plan([{ name: "compression.type", op: 0, value: "zstd" }])),
    ErrorCode.INVALID_CONFIG,
  );
  assert.equal(
    code(plan([{ name: "remote.storage.enable", op: 0, value: "true" }])),
    ErrorCode.INVALID_CONFIG,
  );
  // int64 values beyond 2^53 are valid Kafka longs.
  assert.equal(
    code(plan([{ name: "flush.ms", op: 0, value: "9223372036854775807" }])),
    ErrorCode.NONE,
  );
  assert.equal(
    code(plan([{ name: "flush.ms", op: 0, value: "9223372036854775808" }])),
    ErrorCode.INVALID_CONFIG,
  );
  assert.equal(
    code(plan([{ name: "segment.bytes", op: 0, value: "2147483648" }])),
    ErrorCode.INVALID_CONFIG,
  );
  assert.equal(
    code(plan([{ name: "min.cleanable.dirty.ratio", op: 0, value: "1.5" }])),
    ErrorCode.INVALID_CONFIG,
  );
});

Deno.test("every standard topic key's default passes its own validation", () => {
  for (const [name, def] of TOPIC_CONFIG_DEFS) {
    assert.doesNotThrow(() => validateTopicConfigs([{ name, value: def.defaultValue }]), name);
  }
});

Deno.test("broker configs: per broker over cluster default over static default", () => {
  let image = onePartitionImage([1, 2], 1);
  image = applyIncremental(image, CLUSTER, [{ name: "log.retention.ms", op: 0, value: "5000" }]);
  image = applyIncremental(image, BROKER_1, [{ name: "log.retention.ms", op: 0, value: "7000" }]);
  const topic = image.topic("t")!;
  assert.deepEqual(resolveTopicConfig(topic.configs, "retention.ms", image.brokerConfigLayers(1)), {
    value: "7000",
    source: "DYNAMIC_BROKER_CONFIG",
  });
  assert.deepEqual(resolveTopicConfig(topic.configs, "retention.ms", image.brokerConfigLayers(2)), {
    value: "5000",
    source: "DYNAMIC_DEFAULT_BROKER_CONFIG",
  });
  assert.deepEqual(
    resolveTopicConfig({ "retention.ms": "1" }, "retention.ms", image.brokerConfigLayers(1)),
    {
      value: "1",
      source: "TOPIC_CONFIG",
    },
  );
  assert.equal(
    code(() =>
      planIncrementalAlterConfigs(image, BROKER_1, [{ name: "node.id", op: 0, value: "3" }])
    ),
    ErrorCode.INVALID_CONFIG,
  );
  assert.equal(
    code(() => planIncrementalAlterConfigs(image, { resourceType: 4, resourceName: "x" }, [])),
    ErrorCode.INVALID_REQUEST,
  );
  // The snapshot keeps them.
  const restored = MetadataImage.fromSnapshot(image.toSnapshot());
  assert.deepEqual(restored.brokerConfigLayers(1), image.brokerConfigLayers(1));
  // Deleting the last key removes the resource; an image without broker configs encodes as before.
  image = applyIncremental(image, BROKER_1, [{ name: "log.retention.ms", op: 1, value: null }]);
  image = applyIncremental(image, CLUSTER, [{ name: "log.retention.ms", op: 1, value: null }]);
  assert.equal(image.brokerConfigs.size, 0);
});

Deno.test("AlterConfigs replaces every override of the resource", () => {
  let image = onePartitionImage([1], 1);
  image = applyIncremental(image, TOPIC, [
    { name: "retention.ms", op: 0, value: "1000" },
    { name: "segment.ms", op: 0, value: "2000" },
  ]);
  image = image.applyAll(planAlterConfigs(image, TOPIC, [{ name: "segment.ms", value: "3000" }]));
  assert.deepEqual(image.topic("t")!.configs, { "segment.ms": "3000" });
  assert.equal(
    code(() => planAlterConfigs(image, TOPIC, [{ name: "segment.ms", value: null }])),
    ErrorCode.INVALID_REQUEST,
  );
});

Deno.test("ElectLeaders: preferred and unclean, with Kafka's answers", () => {
  // Preferred replica 1 is in the ISR but 2 leads.
  let image = onePartitionImage([1, 2, 3], 2);
  const record = planElectLeader(image, "t", 0, ElectionType.PREFERRED);
  assert.deepEqual(record, {
    type: "PartitionChange",
    topicId: TEST_TOPIC_ID,
    partitionId: 0,
    leader: 1,
  });
  image = image.apply(record);
  assert.equal(code(() => planElectLeader(image, "t", 0, 0)), ErrorCode.ELECTION_NOT_NEEDED);
  assert.equal(code(() => planElectLeader(image, "t", 0, 1)), ErrorCode.ELECTION_NOT_NEEDED);
  assert.equal(code(() => planElectLeader(image, "t", 1, 0)), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(code(() => planElectLeader(image, "x", 0, 0)), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  // Preferred replica 1 out of the ISR: not available.
  image = image.apply({
    type: "PartitionChange",
    topicId: TEST_TOPIC_ID,
    partitionId: 0,
    leader: 2,
    isr: [2, 3],
  });
  assert.equal(
    code(() => planElectLeader(image, "t", 0, 0)),
    ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
  );
  // No leader, the only ISR member fenced: unclean elects an active replica outside the ISR.
  image = image.applyAll([
    { type: "PartitionChange", topicId: TEST_TOPIC_ID, partitionId: 0, leader: -1, isr: [3] },
    { type: "BrokerRegistrationChange", brokerId: 3, brokerEpoch: 3, fenced: true },
  ]);
  const unclean = planElectLeader(image, "t", 0, ElectionType.UNCLEAN);
  assert.deepEqual(unclean, {
    type: "PartitionChange",
    topicId: TEST_TOPIC_ID,
    partitionId: 0,
    leader: 1,
    isr: [1],
    leaderRecoveryState: 1,
  });
  // Nobody active: unclean has no eligible leader.
  image = image.applyAll([1, 2].map((b) => ({
    type: "BrokerRegistrationChange" as const,
    brokerId: b,
    brokerEpoch: b,
    fenced: true,
  })));
  assert.equal(
    code(() => planElectLeader(image, "t", 0, 1)),
    ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
  );
});
