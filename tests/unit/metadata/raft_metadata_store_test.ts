/**
 * RaftMetadataStore on real TCP (127.0.0.1) and real files: one voter (the embedded
 * default) and three in-process voters (convergence, controller failover, catch-up of a
 * restarted node through the leader's snapshot, listener order).
 */
import assert from "node:assert/strict";
import {
  type MetadataImage,
  type MetadataRecord,
  planCreateTopic,
} from "../../../lib/metadata/mod.ts";
import {
  decodeMetadataEntry,
  encodeMetadataEntry,
  RaftMetadataStore,
} from "../../../lib/metadata/raft_metadata_store.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { NotLeaderError, RaftClosedError } from "../../../lib/raft/mod.ts";
import { AssertionError } from "../../../lib/util/assert.ts";
import { TidelogError } from "../../../lib/util/errors.ts";
import { Random } from "../../../lib/util/random.ts";
import { controllerContext, createTopic, RaftNodes, waitFor, withDeadline } from "./_raft_nodes.ts";

/** Names of the topics in `next` and not in `prev`, sorted. */
function newTopics(prev: MetadataImage, next: MetadataImage): string[] {
  return [...next.topicsByName.keys()].filter((n) => prev.topic(n) === undefined).sort();
}

/** A plan that creates topic `name`, refusing (TOPIC_ALREADY_EXISTS) if it exists. */
function createTopicOrFail(name: string) {
  return (image: MetadataImage) => {
    const plan = planCreateTopic(
      image,
      { name, numPartitions: 1, replicationFactor: -1, assignments: [], configs: [] },
      controllerContext(),
    );
    return { records: plan.records, result: plan.topicId };
  };
}

async function startOne(dir: string, snapshotEvery?: number): Promise<RaftMetadataStore> {
  const store = await RaftMetadataStore.start({
    nodeId: 1,
    voters: new Map([[1, "127.0.0.1:0"]]),
    dataDir: dir,
    tickMs: 5,
    ...(snapshotEvery !== undefined ? { snapshotEvery } : {}),
    random: new Random(11),
  });
  await waitFor("the single voter to become controller", () => store.isController() || undefined);
  return store;
}

Deno.test("RaftMetadataStore: one voter: proposes, notifies, and recovers from log and snapshot", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "raft-metadata-one-" });
  let store: RaftMetadataStore | undefined;
  try {
    store = await startOne(dir);
    const s = store;
    const calls: { prev: number; next: number; topics: string[] }[] = [];
    s.onChange((prev, next) => {
      calls.push({ prev: prev.offset, next: next.offset, topics: newTopics(prev, next) });
    });

    await t.step("propose() creates a topic; listeners see it before it resolves", async () => {
      assert.equal(s.controllerId(), 1);
      assert.ok(s.raftAddr.port > 0, "listens on a real port even as the only voter");
      assert.equal(s.status().role, "leader");
      const topicId = await s.propose(createTopic("orders", 3));
      const topic = s.image.topic("orders");
      assert.equal(topic?.topicId, topicId);
      assert.equal(topic.partitions.length, 3);
      assert.deepEqual(topic.partitions.map((p) => p.leader), [1, 1, 1]);
      assert.equal(s.image.offset, 4, "one Topic and three Partition records");
      assert.deepEqual(calls, [{ prev: 0, next: 4, topics: ["orders"] }]);
      await s.waitForApplied(4);
    });

    await t.step(
      "propose() rejects plan errors and unappliable records without proposing",
      async () => {
        const before = s.status().lastIndex;
        const image = s.image;
        const exists = await s.propose((im) => {
          const plan = planCreateTopic(
            im,
            {
              name: "orders",
              numPartitions: 1,
              replicationFactor: -1,
              assignments: [],
              configs: [],
            },
            controllerContext(),
          );
          return { records: plan.records, result: plan.topicId };
        }).catch((e) => e);
        assert.ok(exists instanceof TidelogError, String(exists));
        assert.equal(exists.code, ErrorCode.TOPIC_ALREADY_EXISTS);
        const orphan: MetadataRecord = {
          type: "Partition",
          topicId: "no-such-topic",
          partitionId: 0,
          replicas: [1],
          isr: [1],
          leader: 1,
          leaderEpoch: 0,
          partitionEpoch: 0,
        };
        await assert.rejects(s.propose(() => ({ records: [orphan], result: 0 })), AssertionError);
        assert.equal(await s.propose(() => ({ records: [], result: "noop" })), "noop");
        assert.equal(s.status().lastIndex, before, "nothing was proposed");
        assert.equal(s.image, image);
        assert.equal(s.failure, undefined);
        assert.equal(
          await s.propose(createTopic("after-errors")),
          s.image.topic("after-errors")?.topicId,
        );
      },
    );

    await t.step(
      "concurrent propose() calls are planned one after another on the latest image",
      async () => {
        const results = await Promise.all(
          Array.from({ length: 10 }, () =>
            s.propose((im) => {
              const name = `seq-${String(im.topicsById.size).padStart(2, "0")}`;
              return { records: createTopic(name)(im).records, result: name };
            })),
        );
        assert.deepEqual(
          results,
          Array.from({ length: 10 }, (_, i) => `seq-${String(i + 2).padStart(2, "0")}`),
        );
        assert.deepEqual(calls.slice(-10).map((c) => c.topics), results.map((n) => [n]));
      },
    );

    await t.step("a restart replays the log into the same image", async () => {
      const image = s.image;
      assert.equal(s.status().snapshotIndex, 0);
      const never = s.waitForApplied(image.offset + 1);
      await s.close();
      await assert.rejects(never, RaftClosedError);
      await assert.rejects(s.propose(createTopic("closed")), RaftClosedError);
      store = await startOne(dir);
      assert.deepEqual(store.image.toSnapshot(), image.toSnapshot());
      assert.equal(store.image.offset, image.offset);
      let notified = 0;
      store.onChange(() => void notified++);
      await store.propose(createTopic("after-restart"));
      assert.equal(notified, 1);
      await store.close();
      store = undefined;
    });

    await t.step(
      "with a small snapshotEvery, a restart loads the snapshot, then replays",
      async () => {
        const dir2 = `${dir}/snap`;
        let s2 = await startOne(dir2, 4);
        try {
          for (let i = 0; i < 11; i++) await s2.propose(createTopic(`snap-${i}`, 2));
          const st = s2.status();
          assert.ok(st.snapshotIndex > 0, `snapshot taken (${JSON.stringify(st)})`);
          assert.ok(st.lastIndex > st.snapshotIndex, "entries after the snapshot to replay");
          const image = s2.image;
          await s2.close();
          s2 = await startOne(dir2, 4);
          assert.equal(s2.image.offset, image.offset);
          assert.equal(s2.image.topicsById.size, 11);
          assert.deepEqual(s2.image.toSnapshot(), image.toSnapshot());
        } finally {
          await s2.close();
        }
      },
    );
  } finally {
    await store?.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RaftMetadataStore: a slow listener holds propose() but neither the next plan nor proposeApplied()", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raft-metadata-slow-listener-" });
  const store = await startOne(dir);
  const gate = Promise.withResolvers<void>();
  try {
    const seen: string[][] = [];
    store.onChange(async (prev, next) => {
      await gate.promise; // as ReplicaManager.applyImage creating partitions on a slow disk
      seen.push(newTopics(prev, next));
    });
    const settled: string[] = [];
    const first = store.propose(createTopic("first", 3)).then(() => settled.push("first"));
    // The next plan runs on the applied image; its caller needs no listener.
    const secondId = await withDeadline(
      store.proposeApplied(createTopic("second")),
      "proposeApplied() behind a held listener",
      5000,
    );
    assert.equal(store.image.topic("second")?.topicId, secondId);
    assert.ok(store.image.topic("first"), "planned after the first entry applied");
    assert.equal(store.controllerImage(), store.image, "the controller's image is current");
    // A plan refusing because of what it saw settles once the listeners saw it too.
    let planned = false;
    const duplicate = store.propose((image) => {
      planned = true;
      return createTopicOrFail("first")(image);
    }).catch((err) => {
      settled.push("duplicate");
      return err;
    });
    await waitFor("the refusal to be planned", () => planned || undefined);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(settled, [], "propose() waits for the listeners, even to refuse");
    assert.deepEqual(seen, []);
    gate.resolve();
    await first;
    const err = await duplicate;
    assert.ok(err instanceof TidelogError && err.code === ErrorCode.TOPIC_ALREADY_EXISTS);
    assert.deepEqual(settled, ["first", "duplicate"]);
    assert.deepEqual(seen, [["first"], ["second"]]);
  } finally {
    gate.resolve();
    await store.close();
    assert.equal(store.controllerImage(), undefined, "a closed store controls nothing");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RaftMetadataStore: three voters: convergence, controller failover, catch-up via snapshot", async (t) => {
  await using nodes = await RaftNodes.create(3, { snapshotEvery: 5 });
  for (const id of [1, 2, 3]) await nodes.start(id);
  const committed: string[] = [];
  const hasAll = (id: number) => committed.every((n) => nodes.get(id).image.topic(n) !== undefined);
  let leader = 0;

  await t.step("a controller is elected; a follower's propose() names it", async () => {
    leader = await nodes.leader();
    const follower = nodes.running().find((id) => id !== leader)!;
    const f = nodes.get(follower);
    assert.equal(f.isController(), false);
    assert.equal(f.controllerId(), leader);
    let planned = false;
    const err = await f.propose((im) => {
      planned = true;
      return createTopic("nope")(im);
    }).catch((e) => e);
    assert.ok(err instanceof NotLeaderError, String(err));
    assert.equal(err.leaderId, leader);
    assert.equal(err.maybeCommitted, false);
    assert.equal(planned, false);
  });

  await t.step("proposals on the controller converge on every node", async () => {
    for (let i = 0; i < 6; i++) {
      const name = `a-${i}`;
      await nodes.propose(createTopic(name, 2));
      committed.push(name);
    }
    const image = await nodes.converged();
    assert.equal(image.topicsById.size, 6);
    for (const id of nodes.running()) {
      await withDeadline(nodes.get(id).waitForApplied(image.offset), `node ${id} to apply`);
    }
  });

  const old = leader;
  let oldLast = 0;
  await t.step("closing the controller elects another; nothing committed is lost", async () => {
    oldLast = nodes.get(old).status().lastIndex;
    await nodes.stop(old);
    leader = await nodes.leader();
    assert.notEqual(leader, old);
    for (const id of nodes.running()) assert.ok(hasAll(id), `node ${id} lost a committed topic`);
    // Enough entries that the new controller compacts past everything the old one had.
    for (let i = 0; nodes.get(leader).status().snapshotIndex <= oldLast || i < 6; i++) {
      assert.ok(i < 100, "the controller never compacted its log");
      const name = `b-${i}`;
      await nodes.propose(createTopic(name));
      committed.push(name);
    }
    leader = await nodes.leader();
    const image = await nodes.converged();
    assert.equal(image.topicsById.size, committed.length);
    for (const id of nodes.running()) assert.ok(hasAll(id));
  });

  await t.step("the restarted old controller catches up through the snapshot", async () => {
    const seen: { prev: MetadataImage; next: MetadataImage }[] = [];
    const snapshotIndex = nodes.get(leader).status().snapshotIndex;
    assert.ok(snapshotIndex > oldLast, "the entries it misses are compacted away");
    const restarted = await nodes.start(
      old,
      (s) => s.onChange((prev, next) => void seen.push({ prev, next })),
    );
    const start = restarted.image;
    const image = await nodes.converged([1, 2, 3], 30_000);
    assert.ok(hasAll(old));
    assert.ok(restarted.status().snapshotIndex >= snapshotIndex, "it installed a snapshot");
    assert.equal(restarted.controllerId(), leader);
    // The listener saw a gapless chain from the image at start to the converged one.
    await withDeadline(restarted.waitForApplied(image.offset), "the listener to catch up");
    assert.ok(seen.length > 0);
    assert.equal(seen[0]!.prev, start);
    for (let i = 1; i < seen.length; i++) assert.equal(seen[i]!.prev, seen[i - 1]!.next);
    assert.deepEqual(seen.at(-1)!.next.toSnapshot(), image.toSnapshot());
  });

  await t.step("proposals continue with all three", async () => {
    await nodes.propose(createTopic("c-0"));
    committed.push("c-0");
    await nodes.converged();
    for (const id of nodes.running()) assert.ok(hasAll(id));
  });
});

Deno.test("RaftMetadataStore: a new controller plans against every record its predecessor committed", async () => {
  await using nodes = await RaftNodes.create(3);
  for (const id of [1, 2, 3]) await nodes.start(id);
  for (let round = 0; round < 3; round++) {
    const old = await nodes.leader();
    const survivors = nodes.running().filter((id) => id !== old);
    const leader = nodes.get(old);
    await leader.propose(createTopic(`warm-up-${round}`)); // its barrier is behind it
    const name = `last-of-${old}-${round}`;
    const target = leader.status().lastIndex + 1;
    const inFlight = leader.propose(createTopic(name)).catch(() => undefined);
    // Stop the controller as soon as both followers hold the entry: it is then bound to
    // commit, but the followers may not have learnt so (their image lacks the topic).
    await waitFor(
      "the entry on both followers",
      () => survivors.every((id) => nodes.get(id).status().lastIndex >= target) || undefined,
      20_000,
      0,
    );
    await nodes.stop(old);
    await inFlight;
    const next = await waitFor(
      "a new controller",
      () => survivors.find((id) => nodes.get(id).isController()),
      20_000,
      0,
    );
    const plan = (image: MetadataImage) => ({ records: [], result: image.topic(name) });
    const seen = await nodes.get(next).propose(plan).catch(async (err) => {
      if (!(err instanceof NotLeaderError)) throw err;
      return await nodes.propose(plan); // lost it again: any later controller must see it too
    });
    assert.ok(seen !== undefined, `controller ${next} planned without ${name}`);
    await nodes.start(old);
    await nodes.converged();
  }
});

Deno.test("RaftMetadataStore: listeners see records in commit order on every node", async () => {
  await using nodes = await RaftNodes.create(3);
  const seen = new Map<number, string[]>();
  // A throwing listener is only logged by the store: collect the problems instead.
  const problems: string[] = [];
  for (const id of [1, 2, 3]) {
    seen.set(id, []);
    await nodes.start(id, (s) => {
      let last = s.image;
      let running = false;
      s.onChange(async (prev, next) => {
        if (running) problems.push(`node ${id}: listener called while the last one runs`);
        if (prev !== last) problems.push(`node ${id}: a gap before offset ${next.offset}`);
        if (next.offset <= prev.offset) problems.push(`node ${id}: offset ${next.offset} not new`);
        running = true;
        last = next;
        // Awaited one at a time: a slow listener must not let the next one overtake it.
        await new Promise((r) => setTimeout(r, 1));
        seen.get(id)!.push(...newTopics(prev, next));
        running = false;
      });
    });
  }
  const leader = await nodes.leader();
  // Issued together on the controller: serialised by the store, committed in call order.
  const names = Array.from({ length: 20 }, (_, i) => `ordered-${String(i).padStart(2, "0")}`);
  const shuffled = [...names].reverse();
  const results = await Promise.allSettled(
    shuffled.map((n) => nodes.get(leader).propose(createTopic(n))),
  );
  // A controller change mid-way (a slow machine) leaves the rest to the retrying path.
  for (const [i, r] of results.entries()) {
    if (r.status === "rejected") await nodes.propose(createTopic(shuffled[i]!));
  }
  const expected = results.every((r) => r.status === "fulfilled") ? shuffled : undefined;
  await nodes.converged();
  for (const id of nodes.running()) {
    await withDeadline(nodes.get(id).waitForApplied(nodes.get(id).image.offset), "listeners");
  }
  assert.deepEqual(problems, []);
  for (const id of nodes.running()) {
    const order = seen.get(id)!;
    assert.equal(order.length, 20, `node ${id} saw ${order.length} topics`);
    assert.deepEqual([...order].sort(), names);
    if (expected !== undefined) assert.deepEqual(order, expected, `node ${id} order`);
    assert.deepEqual(order, seen.get(leader), `node ${id} and the controller disagree on order`);
  }
});

Deno.test("encodeMetadataEntry() and decodeMetadataEntry() round-trip records exactly", () => {
  const records: MetadataRecord[] = [
    { type: "Cluster", clusterId: "c-1" },
    { type: "Topic", name: "t", topicId: "T", configs: { "cleanup.policy": "compact" } },
    {
      type: "Partition",
      topicId: "T",
      partitionId: 0,
      replicas: [1, 2, 3],
      isr: [1, 3],
      leader: 1,
      leaderEpoch: 4,
      partitionEpoch: 7,
    },
    { type: "Config", topicId: "T", name: "retention.ms", value: null },
    { type: "ProducerIds", brokerId: 2, nextProducerId: 2 ** 40 },
  ];
  assert.deepEqual(decodeMetadataEntry(encodeMetadataEntry(records)), records);
  assert.deepEqual(decodeMetadataEntry(encodeMetadataEntry([])), []);
  // Byte fields, should a record ever carry one, round-trip as Uint8Array.
  const withBytes = [{
    type: "Future",
    blob: new Uint8Array([0, 255, 7]),
  }] as unknown as MetadataRecord[];
  assert.deepEqual(decodeMetadataEntry(encodeMetadataEntry(withBytes)), withBytes);
  const big = [{ type: "Future", n: 1n }] as unknown as MetadataRecord[];
  assert.throws(() => encodeMetadataEntry(big), TypeError);
  assert.throws(() => decodeMetadataEntry(new Uint8Array()), SyntaxError);
  assert.throws(() => decodeMetadataEntry(new Uint8Array([9, 0x5b, 0x5d])), SyntaxError);
  assert.throws(() => decodeMetadataEntry(new Uint8Array([1, 0x7b, 0x7d])), SyntaxError);
  assert.throws(() => decodeMetadataEntry(new Uint8Array([1, 0x5b, 0x31, 0x5d])), SyntaxError);
});
