import assert from "node:assert/strict";
import fc from "fast-check";
import {
  canonicalImage,
  type ControllerContext,
  imageEquals,
  MetadataImage,
  type MetadataRecord,
  type PartitionChangeRecord,
  planCreatePartitions,
  planCreateTopic,
  planDeleteTopic,
} from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { crc32c } from "../../../lib/util/crc32c.ts";
import { TidelogError } from "../../../lib/util/errors.ts";
import { clusterEvents, runEvents, withBrokers } from "./_cluster.ts";

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
      "an unknown cleanup policy",
      { ...spec, name: "p", configs: [{ name: "cleanup.policy", value: "compact,shred" }] },
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

Deno.test("MetadataImage.apply() registers, fences and unregisters brokers", () => {
  const reg = (brokerId: number, brokerEpoch: number, incarnationId = `i${brokerId}`) => ({
    type: "RegisterBroker" as const,
    brokerId,
    incarnationId,
    brokerEpoch,
    endpoints: [{ host: "h", port: 9000 + brokerId }],
    rack: null,
    fenced: true,
  });
  let image = MetadataImage.EMPTY.applyAll([reg(1, 1), reg(2, 2)]);
  assert.deepEqual(image.liveBrokers(), []);
  assert.equal(image.brokers.get(2)!.registrationOffset, 2);
  image = image.applyAll([
    { type: "BrokerRegistrationChange", brokerId: 1, brokerEpoch: 1, fenced: false },
    { type: "BrokerRegistrationChange", brokerId: 2, brokerEpoch: 2, fenced: false },
  ]);
  assert.deepEqual(image.liveBrokers(), [1, 2]);
  image = image.apply({
    type: "BrokerRegistrationChange",
    brokerId: 2,
    brokerEpoch: 2,
    inControlledShutdown: true,
  });
  assert.deepEqual(image.liveBrokers(), [1, 2], "controlled shutdown is still live");
  assert.equal(image.isActive(2), false, "but may not lead or join an ISR");
  // A re-registration replaces the old one: new incarnation, epoch, fenced, not shutting down.
  image = image.apply(reg(2, 10, "new"));
  const b = image.brokers.get(2)!;
  assert.deepEqual(
    [b.incarnationId, b.brokerEpoch, b.fenced, b.inControlledShutdown, b.registrationOffset],
    ["new", 10, true, false, image.offset],
  );
  assert.throws(
    () =>
      image.apply({ type: "BrokerRegistrationChange", brokerId: 2, brokerEpoch: 2, fenced: false }),
    /epoch 2/,
    "a change for an old registration is a bug",
  );
  assert.throws(() => image.apply({ type: "UnregisterBroker", brokerId: 3, brokerEpoch: 1 }));
  image = image.apply({ type: "UnregisterBroker", brokerId: 2, brokerEpoch: 10 });
  assert.deepEqual([...image.brokers.keys()], [1]);
});

Deno.test("MetadataImage.apply() PartitionChange bumps leaderEpoch on leader changes and partitionEpoch always", async (t) => {
  const base = MetadataImage.EMPTY.applyAll([
    { type: "Topic", name: "a", topicId: "A", configs: {} },
    // Written before leaderRecoveryState existed: reads as RECOVERED.
    {
      type: "Partition",
      topicId: "A",
      partitionId: 0,
      replicas: [1, 2, 3],
      isr: [1, 2, 3],
      leader: 1,
      leaderEpoch: 4,
      partitionEpoch: 7,
    },
  ]);
  const table: {
    name: string;
    change: Omit<PartitionChangeRecord, "type" | "topicId" | "partitionId">;
    want: [leader: number, isr: number[], leaderEpoch: number, partitionEpoch: number, lrs: number];
  }[] = [
    { name: "ISR only", change: { isr: [1, 2] }, want: [1, [1, 2], 4, 8, 0] },
    { name: "new leader", change: { leader: 2 }, want: [2, [1, 2, 3], 5, 8, 0] },
    { name: "no leader", change: { leader: -1, isr: [1] }, want: [-1, [1], 5, 8, 0] },
    {
      name: "same leader written: forced bump",
      change: { leader: 1 },
      want: [1, [1, 2, 3], 5, 8, 0],
    },
    { name: "recovery state", change: { leaderRecoveryState: 1 }, want: [1, [1, 2, 3], 4, 8, 1] },
    { name: "nothing", change: {}, want: [1, [1, 2, 3], 4, 8, 0] },
  ];
  for (const c of table) {
    await t.step(c.name, () => {
      const image = base.apply({
        type: "PartitionChange",
        topicId: "A",
        partitionId: 0,
        ...c.change,
      });
      const p = image.partition({ topicId: "A", partitionId: 0 })!;
      assert.deepEqual(
        [p.leader, p.isr, p.leaderEpoch, p.partitionEpoch, p.leaderRecoveryState],
        c.want,
      );
      assert.equal(base.partition({ topicId: "A", partitionId: 0 })!.partitionEpoch, 7);
    });
  }
  await t.step("helpers", () => {
    const image = base.apply({
      type: "PartitionChange",
      topicId: "A",
      partitionId: 0,
      isr: [1, 3],
    });
    assert.deepEqual(image.partitionsLedBy(1), [{ topicId: "A", partitionId: 0 }]);
    assert.deepEqual(image.partitionsLedBy(2), []);
    assert.equal(image.isInIsr(3, { topicId: "A", partitionId: 0 }), true);
    assert.equal(image.isInIsr(2, { topicId: "A", partitionId: 0 }), false);
    assert.equal(image.isInIsr(1, { topicId: "A", partitionId: 1 }), false);
    assert.throws(() => image.apply({ type: "PartitionChange", topicId: "A", partitionId: 1 }));
  });
});

Deno.test("MetadataImage.fromSnapshot() rejects damaged snapshots with SyntaxError", async (t) => {
  const good = withBrokers(MetadataImage.EMPTY, [1]).toSnapshot();
  const damaged = (at: number, value: number) => {
    const b = good.slice();
    b[at] = value;
    return b;
  };
  const reframe = (payload: string) => {
    const body = new TextEncoder().encode(payload);
    const b = new Uint8Array(12 + body.length);
    b.set(good.subarray(0, 8));
    new DataView(b.buffer).setUint32(8, crc32c(body));
    b.set(body, 12);
    return b;
  };
  const table: [string, Uint8Array, RegExp][] = [
    ["short", good.subarray(0, 5), /too short/],
    ["magic", damaged(0, 0), /bad magic/],
    ["version", damaged(5, 9), /unknown version 9/],
    ["payload bit flip", damaged(20, good[20]! ^ 1), /checksum/],
    ["not JSON", reframe("{"), /Cannot decode metadata snapshot/],
    ["wrong shape", reframe('{"offset":"x"}'), /invalid/],
    [
      "bad partition field",
      reframe(
        JSON.stringify({
          ...canonicalImage(MetadataImage.EMPTY),
          topics: [{ topicId: "A", name: "a", configs: [], partitions: [{ leader: 1 }] }],
        }),
      ),
      /invalid leaderRecoveryState/,
    ],
  ];
  for (const [name, bytes, message] of table) {
    await t.step(name, () =>
      assert.throws(() => MetadataImage.fromSnapshot(bytes), (err) => {
        assert.ok(err instanceof SyntaxError);
        assert.match(err.message, message);
        return true;
      }));
  }
  await t.step("intact", () => {
    assert.ok(imageEquals(MetadataImage.fromSnapshot(good), withBrokers(MetadataImage.EMPTY, [1])));
  });
});

/** Record logs as the controller writes them: random cluster events, decided and applied. */
const recordLogs = clusterEvents.map((events) => runEvents(events, () => {}).log);

Deno.test("MetadataImage snapshot: snapshot + tail = full replay (property)", () => {
  fc.assert(
    fc.property(recordLogs, fc.nat(), (log, cutSeed) => {
      const cut = cutSeed % (log.length + 1);
      const head = MetadataImage.EMPTY.applyAll(log.slice(0, cut));
      const restored = MetadataImage.fromSnapshot(head.toSnapshot());
      assert.deepEqual(canonicalImage(restored), canonicalImage(head));
      assert.ok(imageEquals(restored, head));
      assert.deepEqual(
        [...restored.topicsByName.keys()].sort(),
        [...head.topicsByName.keys()].sort(),
      );
      const full = MetadataImage.EMPTY.applyAll(log);
      const resumed = restored.applyAll(log.slice(cut));
      assert.deepEqual(canonicalImage(resumed), canonicalImage(full));
      assert.deepEqual(resumed.toSnapshot(), full.toSnapshot());
    }),
    { numRuns: 200 },
  );
});

Deno.test("MetadataImage snapshot: the same records give the same bytes (property)", () => {
  fc.assert(
    fc.property(recordLogs, (log) => {
      const once = MetadataImage.EMPTY.applyAll(log).toSnapshot();
      // Applied one at a time, and after the journal's JSON round trip.
      let image = MetadataImage.EMPTY;
      for (const r of log) image = image.apply(r);
      const journaled = JSON.parse(JSON.stringify(log)) as MetadataRecord[];
      assert.deepEqual(image.toSnapshot(), once);
      assert.deepEqual(MetadataImage.EMPTY.applyAll(journaled).toSnapshot(), once);
      assert.deepEqual(MetadataImage.fromSnapshot(once).toSnapshot(), once);
    }),
    { numRuns: 200 },
  );
});
