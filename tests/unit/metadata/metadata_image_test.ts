import assert from "node:assert/strict";
import fc from "fast-check";
import {
  assignReplicas,
  type ControllerContext,
  MetadataImage,
  type MetadataRecord,
  planCreatePartitions,
  planCreateTopic,
  planDeleteTopic,
} from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { TidelogError } from "../../../lib/util/errors.ts";

function context(brokers: number[] = [1], ids: string[] = []): ControllerContext {
  let n = 0;
  return {
    liveBrokers: brokers,
    defaults: { numPartitions: 1, defaultReplicationFactor: 3 },
    newTopicId: () => ids[n++] ?? `id-${n}`,
  };
}

function codeOf(fn: () => unknown): number {
  try {
    fn();
    return ErrorCode.NONE;
  } catch (err) {
    assert.ok(err instanceof TidelogError, String(err));
    return err.code;
  }
}

Deno.test("MetadataImage.apply() builds topics, partitions and configs, and never mutates", () => {
  const records: MetadataRecord[] = [
    { type: "Cluster", clusterId: "c1" },
    { type: "Topic", name: "a", topicId: "A", configs: { "retention.ms": "5" } },
    {
      type: "Partition",
      topicId: "A",
      partitionId: 0,
      replicas: [1],
      isr: [1],
      leader: 1,
      leaderEpoch: 0,
      partitionEpoch: 0,
    },
    { type: "Config", topicId: "A", name: "retention.ms", value: null },
    { type: "Config", topicId: "A", name: "segment.bytes", value: "100" },
  ];
  const images = records.reduce((acc, r) => [...acc, acc.at(-1)!.apply(r)], [MetadataImage.EMPTY]);
  const last = images.at(-1)!;
  assert.equal(last.clusterId, "c1");
  assert.deepEqual(last.topic("a")!.configs, { "segment.bytes": "100" });
  assert.equal(last.topic("a")!.partitions.length, 1);
  assert.deepEqual(
    images[2]!.topic("a")!.configs,
    { "retention.ms": "5" },
    "older image unchanged",
  );
  assert.equal(last.offset, records.length);
  const removed = last.apply({ type: "RemoveTopic", topicId: "A" });
  assert.equal(removed.topic("a"), undefined);
  assert.ok(last.topic("a"));
});

Deno.test("MetadataImage: the same records give the same image (property)", () => {
  // Random create/grow/delete sequences planned by the controller, applied twice in
  // two ways (one by one, and all at once) must agree.
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("create" as const),
      name: fc.constantFrom("a", "b", "c", "d"),
      partitions: fc.integer({ min: 1, max: 4 }),
    }),
    fc.record({
      kind: fc.constant("grow" as const),
      name: fc.constantFrom("a", "b", "c", "d"),
      by: fc.integer({ min: 1, max: 3 }),
    }),
    fc.record({ kind: fc.constant("delete" as const), name: fc.constantFrom("a", "b", "c", "d") }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      let image = MetadataImage.EMPTY;
      const log: MetadataRecord[] = [];
      const ctx = context([1, 2, 3]);
      for (const o of ops) {
        let records: MetadataRecord[] = [];
        try {
          if (o.kind === "create") {
            records = planCreateTopic(image, {
              name: o.name,
              numPartitions: o.partitions,
              replicationFactor: -1,
              assignments: [],
              configs: [],
            }, ctx).records;
          } else if (o.kind === "grow") {
            const t = image.topic(o.name);
            if (t) {
              records = planCreatePartitions(image, o.name, t.partitions.length + o.by, null, ctx);
            }
          } else {
            const t = image.topic(o.name);
            if (t) records = planDeleteTopic(image, t);
          }
        } catch (err) {
          if (!(err instanceof TidelogError)) throw err;
        }
        image = image.applyAll(records);
        log.push(...records);
      }
      const replay = MetadataImage.EMPTY.applyAll(log);
      assert.deepEqual([...replay.topicsById.entries()], [...image.topicsById.entries()]);
      for (const t of replay.topicsById.values()) {
        t.partitions.forEach((p) => {
          assert.ok(p.isr.includes(p.leader), "leader in ISR");
          assert.equal(new Set(p.replicas).size, p.replicas.length);
        });
      }
    }),
  );
});

Deno.test("planCreateTopic() returns Kafka's error codes", async (t) => {
  const image = MetadataImage.EMPTY.applyAll(
    planCreateTopic(MetadataImage.EMPTY, {
      name: "exists.x",
      numPartitions: 1,
      replicationFactor: 1,
      assignments: [],
      configs: [],
    }, context()).records,
  );
  const spec = { numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] };
  const table: [string, Parameters<typeof planCreateTopic>[1], number][] = [
    ["ok", { ...spec, name: "fine" }, ErrorCode.NONE],
    ["exists", { ...spec, name: "exists.x" }, ErrorCode.TOPIC_ALREADY_EXISTS],
    ["collision", { ...spec, name: "exists_x" }, ErrorCode.INVALID_TOPIC_EXCEPTION],
    ["empty name", { ...spec, name: "" }, ErrorCode.INVALID_TOPIC_EXCEPTION],
    ["too long", { ...spec, name: "x".repeat(250) }, ErrorCode.INVALID_TOPIC_EXCEPTION],
    ["bad char", { ...spec, name: "a b" }, ErrorCode.INVALID_TOPIC_EXCEPTION],
    ["0 partitions", { ...spec, name: "p", numPartitions: 0 }, ErrorCode.INVALID_PARTITIONS],
    ["rf 0", { ...spec, name: "p", replicationFactor: 0 }, ErrorCode.INVALID_REPLICATION_FACTOR],
    [
      "rf > brokers",
      { ...spec, name: "p", replicationFactor: 2 },
      ErrorCode.INVALID_REPLICATION_FACTOR,
    ],
    [
      "unknown config",
      { ...spec, name: "p", configs: [{ name: "x", value: "1" }] },
      ErrorCode.INVALID_CONFIG,
    ],
    [
      "bad value",
      { ...spec, name: "p", configs: [{ name: "retention.ms", value: "-5" }] },
      ErrorCode.INVALID_CONFIG,
    ],
    [
      "null value",
      { ...spec, name: "p", configs: [{ name: "retention.ms", value: null }] },
      ErrorCode.INVALID_CONFIG,
    ],
    [
      "compact",
      { ...spec, name: "p", configs: [{ name: "cleanup.policy", value: "compact" }] },
      ErrorCode.INVALID_CONFIG,
    ],
    ["assignment + count", {
      ...spec,
      name: "p",
      assignments: [{ partitionIndex: 0, brokerIds: [1] }],
    }, ErrorCode.INVALID_REQUEST],
    [
      "assignment to unknown broker",
      {
        ...spec,
        name: "p",
        numPartitions: -1,
        replicationFactor: -1,
        assignments: [{ partitionIndex: 0, brokerIds: [9] }],
      },
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
    ],
    [
      "assignment gap",
      {
        ...spec,
        name: "p",
        numPartitions: -1,
        replicationFactor: -1,
        assignments: [{ partitionIndex: 1, brokerIds: [1] }],
      },
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
    ],
    ["defaults", { ...spec, name: "p", numPartitions: -1, replicationFactor: -1 }, ErrorCode.NONE],
  ];
  for (const [label, s, code] of table) {
    await t.step(
      label,
      () => assert.equal(codeOf(() => planCreateTopic(image, s, context())), code),
    );
  }
});

Deno.test("assignReplicas() spreads leaders and followers evenly", () => {
  const lists = assignReplicas([1, 2, 3], 0, 6, 3);
  const leaders = lists.map((l) => l[0]);
  for (const b of [1, 2, 3]) assert.equal(leaders.filter((l) => l === b).length, 2);
  for (const l of lists) assert.equal(new Set(l).size, 3);
});
