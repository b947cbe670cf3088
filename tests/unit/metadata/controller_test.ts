import assert from "node:assert/strict";
import fc from "fast-check";
import {
  assignBalanced,
  type CreateTopicSpec,
  MetadataImage,
  planCreatePartitions,
  planCreateTopic,
} from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { TidelogError } from "../../../lib/util/errors.ts";
import { i5Violation, imageContext, withBrokers } from "./_cluster.ts";

function spec(name: string, over: Partial<CreateTopicSpec> = {}): CreateTopicSpec {
  return { name, numPartitions: 1, replicationFactor: -1, assignments: [], configs: [], ...over };
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

/** Brokers 1-3 active, 4 fenced, 5 in controlled shutdown. */
function mixed(): MetadataImage {
  const image = withBrokers(MetadataImage.EMPTY, [1, 2, 3, 4, 5], { fenced: [4] });
  return image.apply({
    type: "BrokerRegistrationChange",
    brokerId: 5,
    brokerEpoch: image.brokers.get(5)!.brokerEpoch,
    inControlledShutdown: true,
  });
}

function counts(image: MetadataImage, brokers: number[]) {
  const leaders = new Map(brokers.map((b) => [b, 0]));
  const replicas = new Map(brokers.map((b) => [b, 0]));
  for (const t of image.topicsById.values()) {
    for (const p of t.partitions) {
      leaders.set(p.replicas[0]!, leaders.get(p.replicas[0]!)! + 1);
      for (const r of p.replicas) replicas.set(r, replicas.get(r)! + 1);
    }
  }
  const spread = (m: Map<number, number>) => Math.max(...m.values()) - Math.min(...m.values());
  return { leaders, replicas, leaderSpread: spread(leaders), replicaSpread: spread(replicas) };
}

Deno.test("planCreateTopic() without explicit brokers places replicas on the image's active brokers", async (t) => {
  const image = mixed();
  const ctx = imageContext();
  await t.step("RF 3 over the three active brokers, ISR = replicas, leader = first", () => {
    const plan = planCreateTopic(image, spec("a", { numPartitions: 6, replicationFactor: 3 }), ctx);
    const after = image.applyAll(plan.records);
    for (const p of after.topic("a")!.partitions) {
      assert.deepEqual([...p.replicas].sort(), [1, 2, 3]);
      assert.deepEqual(p.isr, p.replicas);
      assert.equal(p.leader, p.replicas[0]);
    }
    assert.equal(counts(after, [1, 2, 3]).leaderSpread, 0);
    assert.equal(i5Violation(after), null);
  });
  await t.step("default RF is capped by the active brokers", () => {
    assert.equal(planCreateTopic(image, spec("d"), imageContext(5)).replicationFactor, 3);
  });
  const table: [string, CreateTopicSpec, number][] = [
    [
      "RF above active brokers",
      spec("b", { replicationFactor: 4 }),
      ErrorCode.INVALID_REPLICATION_FACTOR,
    ],
    [
      "manual: unknown broker",
      spec("b", { numPartitions: -1, assignments: [{ partitionIndex: 0, brokerIds: [1, 9] }] }),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
    ],
    [
      "manual: only fenced or shutting down brokers",
      spec("b", { numPartitions: -1, assignments: [{ partitionIndex: 0, brokerIds: [4, 5] }] }),
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
    ],
    [
      "manual: a fenced broker next to an active one",
      spec("b", { numPartitions: -1, assignments: [{ partitionIndex: 0, brokerIds: [4, 2] }] }),
      ErrorCode.NONE,
    ],
  ];
  for (const [name, s, code] of table) {
    await t.step(name, () => assert.equal(codeOf(() => planCreateTopic(image, s, ctx)), code));
  }
  await t.step("manual: ISR holds only the active replicas, the first of them leads", () => {
    const plan = planCreateTopic(
      image,
      spec("m", { numPartitions: -1, assignments: [{ partitionIndex: 0, brokerIds: [4, 2, 5] }] }),
      ctx,
    );
    const p = image.applyAll(plan.records).topic("m")!.partitions[0]!;
    assert.deepEqual([p.replicas, p.isr, p.leader], [[4, 2, 5], [2], 2]);
  });
  await t.step("no brokers registered: INVALID_REPLICATION_FACTOR", () => {
    assert.equal(
      codeOf(() => planCreateTopic(MetadataImage.EMPTY, spec("x", { replicationFactor: 1 }), ctx)),
      ErrorCode.INVALID_REPLICATION_FACTOR,
    );
  });
});

Deno.test("assignBalanced() accounts for existing partitions", async (t) => {
  await t.step("empty cluster: round-robin", () => {
    assert.deepEqual(
      assignBalanced(MetadataImage.EMPTY, [1, 2, 3], { count: 4, replicationFactor: 2 }),
      [[1, 2], [3, 1], [2, 3], [1, 2]],
    );
  });
  await t.step("single-partition topics rotate their leaders", () => {
    let image = withBrokers(MetadataImage.EMPTY, [1, 2, 3]);
    const ctx = imageContext();
    const leaders = [];
    for (const name of ["a", "b", "c", "d", "e", "f"]) {
      const plan = planCreateTopic(image, spec(name, { replicationFactor: 3 }), ctx);
      image = image.applyAll(plan.records);
      leaders.push(image.topic(name)!.partitions[0]!.leader);
    }
    assert.deepEqual(leaders, [1, 2, 3, 1, 2, 3]);
  });
  await t.step("new partitions go to the brokers with fewest leaderships", () => {
    let image = withBrokers(MetadataImage.EMPTY, [1, 2, 3]);
    const ctx = imageContext();
    image = image.applyAll(
      planCreateTopic(image, spec("a", { replicationFactor: 2 }), ctx).records,
    );
    image = image.applyAll(planCreatePartitions(image, "a", 3, null, ctx));
    assert.deepEqual(image.topic("a")!.partitions.map((p) => p.leader), [1, 3, 2]);
    assert.equal(counts(image, [1, 2, 3]).replicaSpread, 0);
  });
});

Deno.test("planCreateTopic(): preferred leaders and replicas stay balanced (property)", () => {
  const op = fc.record({
    partitions: fc.integer({ min: 1, max: 6 }),
    grow: fc.integer({ min: 0, max: 3 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(op, { minLength: 1, maxLength: 12 }),
      (brokerCount, rfWanted, ops) => {
        const brokers = Array.from({ length: brokerCount }, (_, i) => i + 1);
        const rf = Math.min(rfWanted, brokerCount);
        let image = withBrokers(MetadataImage.EMPTY, brokers);
        const ctx = imageContext();
        ops.forEach((o, i) => {
          const name = `t${i}`;
          const plan = planCreateTopic(
            image,
            spec(name, { numPartitions: o.partitions, replicationFactor: rf }),
            ctx,
          );
          image = image.applyAll(plan.records);
          if (o.grow > 0) {
            image = image.applyAll(
              planCreatePartitions(image, name, o.partitions + o.grow, null, ctx),
            );
          }
        });
        const c = counts(image, brokers);
        assert.ok(c.leaderSpread <= 1, `leaders ${[...c.leaders.entries()]}`);
        assert.ok(c.replicaSpread <= rf, `replicas ${[...c.replicas.entries()]}`);
        for (const t of image.topicsById.values()) {
          for (const p of t.partitions) assert.equal(new Set(p.replicas).size, rf);
        }
        assert.equal(i5Violation(image), null);
      },
    ),
    { numRuns: 200 },
  );
});
