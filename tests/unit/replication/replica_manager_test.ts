/**
 * The replication shell on real partition logs (temp dirs), driven by metadata images and
 * follower fetches by hand, with a manual clock: the leader's high watermark over the
 * committed ISR (I4), acks=all waiters, leadership loss, ISR shrink and expansion through
 * the controller callback, and the follower path (append, epochs, truncation).
 */
import assert from "node:assert/strict";
import type { MetadataImage } from "../../../lib/metadata/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { splitBatches, validateBatch } from "../../../lib/protocol/record_batch.ts";
import { type IsrChange, ReplicaManager } from "../../../lib/replication/mod.ts";
import { denoFs, type FileSystem } from "../../../lib/runtime/fs.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { TidelogError } from "../../../lib/util/errors.ts";
import { onePartitionImage, TEST_TOPIC_ID } from "../../_helpers/images.ts";
import { buildBatch } from "../log/_batches.ts";

const TOPIC_ID = TEST_TOPIC_ID;
const clusterImage = () => onePartitionImage([1, 2, 3], 1);

function change(image: MetadataImage, fields: { leader?: number; isr?: number[] }): MetadataImage {
  return image.apply({ type: "PartitionChange", topicId: TOPIC_ID, partitionId: 0, ...fields });
}

async function withManager(
  nodeId: number,
  fn: (rm: ReplicaManager, clock: ManualClock, isrChanges: IsrChange[]) => Promise<void>,
  replicaLagTimeMaxMs = 10_000,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tidelog-rm-" });
  const clock = new ManualClock(1_000_000);
  const isrChanges: IsrChange[] = [];
  const rm = new ReplicaManager({
    topicsDir: dir,
    nodeId,
    flush: { kind: "always" },
    clock,
    replicaLagTimeMaxMs,
    alterIsr: (req) => {
      isrChanges.push(req);
      return Promise.resolve({ errorCode: ErrorCode.NONE });
    },
  });
  try {
    await fn(rm, clock, isrChanges);
  } finally {
    await rm.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const batch = (n: number) =>
  buildBatch({ records: Array.from({ length: n }, (_, i) => ({ value: `v${i}` })) });

Deno.test("ReplicaManager as leader: the high watermark is the ISR's smallest durable end", async (t) => {
  await withManager(1, async (rm, _clock, isrChanges) => {
    let image = clusterImage();
    await rm.applyImage(image);
    const p = rm.getPartition("t", 0)!;
    assert.equal(p.role, "leader");

    await t.step("acks=all waits for every ISR follower", async () => {
      const { lastOffset } = rm.appendAsLeader(p, batch(5));
      assert.equal(lastOffset, 4);
      let acked = false;
      const wait = p.waitForHighWatermark(lastOffset).then(() => (acked = true));
      await p.waitLocalDurable(lastOffset);
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(p.highWatermark, 0, "followers have not reported yet");
      rm.onFollowerFetch(p, 2, 5);
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(acked, false);
      assert.equal(p.highWatermark, 0);
      rm.onFollowerFetch(p, 3, 3);
      assert.equal(p.highWatermark, 3);
      rm.onFollowerFetch(p, 3, 5);
      assert.equal(p.highWatermark, 5);
      await wait;
      assert.equal(acked, true);
      assert.equal(isrChanges.length, 0, "nobody lagged, nobody joined");
    });

    await t.step("the high watermark never moves back", () => {
      rm.onFollowerFetch(p, 2, 1);
      assert.equal(p.highWatermark, 5);
    });

    await t.step("an ISR without the slow follower lets the HW move", async () => {
      const { lastOffset } = rm.appendAsLeader(p, batch(2));
      await p.waitLocalDurable(lastOffset);
      rm.onFollowerFetch(p, 2, 7);
      assert.equal(p.highWatermark, 5, "follower 3 holds it");
      image = change(image, { isr: [1, 2] });
      await rm.applyImage(image);
      assert.equal(p.highWatermark, 7);
    });

    await t.step(
      "losing leadership fails the waiting acks with NOT_LEADER_OR_FOLLOWER",
      async () => {
        const { lastOffset } = rm.appendAsLeader(p, batch(1));
        const wait = p.waitForHighWatermark(lastOffset);
        image = change(image, { leader: 2 });
        await rm.applyImage(image);
        await assert.rejects(
          wait,
          (e) => e instanceof TidelogError && e.code === ErrorCode.NOT_LEADER_OR_FOLLOWER,
        );
        assert.equal(p.role, "follower");
        assert.throws(
          () => rm.appendAsLeader(p, batch(1)),
          (e) => e instanceof TidelogError && e.code === ErrorCode.NOT_LEADER_OR_FOLLOWER,
        );
      },
    );
  });
});

Deno.test("ReplicaManager as leader: a caught-up follower is proposed back into the ISR", async () => {
  await withManager(1, async (rm, _clock, isrChanges) => {
    const image = change(clusterImage(), { isr: [1, 2] });
    await rm.applyImage(image);
    const p = rm.getPartition("t", 0)!;
    const { lastOffset } = rm.appendAsLeader(p, batch(3));
    await p.waitLocalDurable(lastOffset);
    rm.onFollowerFetch(p, 2, 3);
    assert.equal(p.highWatermark, 3);
    rm.onFollowerFetch(p, 3, 1);
    assert.equal(isrChanges.length, 0, "follower 3 is behind the HW");
    rm.onFollowerFetch(p, 3, 3);
    assert.equal(isrChanges.length, 1);
    assert.deepEqual(isrChanges[0]!.newIsr, [1, 2, 3]);
    assert.equal(isrChanges[0]!.leaderEpoch, p.leaderEpoch);
    assert.equal(isrChanges[0]!.partitionEpoch, p.partitionEpoch);
  });
});

Deno.test("ReplicaManager as follower: appends the leader's batches, learns epochs, truncates", async () => {
  await withManager(2, async (rm) => {
    const image = clusterImage();
    await rm.applyImage(image);
    const p = rm.getPartition("t", 0)!;
    assert.equal(p.role, "follower");
    const fetched = [
      buildBatch({
        records: [{ value: "a" }, { value: "b" }],
        baseOffset: 0,
        partitionLeaderEpoch: 0,
      }),
      buildBatch({ records: [{ value: "c" }], baseOffset: 2, partitionLeaderEpoch: 3 }),
    ];
    const headers = fetched.map((b) => validateBatch(b));
    const last = p.appendAsFollower(fetched, headers);
    assert.equal(last, 2);
    await p.waitLocalDurable(last);
    assert.deepEqual(p.leaderEpochCache.entries, [
      { epoch: 0, startOffset: 0 },
      { epoch: 3, startOffset: 2 },
    ]);
    p.setFollowerHighWatermark(10);
    assert.equal(p.highWatermark, 3, "capped at the follower's log end");
    await p.truncateTo(2);
    assert.equal(p.log.logEndOffset, 2);
    assert.deepEqual(p.leaderEpochCache.entries, [{ epoch: 0, startOffset: 0 }]);
    assert.equal(p.highWatermark, 2);
    const { records } = p.log.read(0, 1 << 20);
    assert.equal(splitBatches(records).length, 1);
  });
});

Deno.test("ReplicaManager as leader: a follower not caught up within the lag time is proposed out", async () => {
  // A lag time of 20 ms checks every 10 ms of real time; the manual clock decides lag.
  await withManager(1, async (rm, clock, isrChanges) => {
    await rm.applyImage(clusterImage());
    const p = rm.getPartition("t", 0)!;
    const { lastOffset } = rm.appendAsLeader(p, batch(4));
    await p.waitLocalDurable(lastOffset);
    rm.onFollowerFetch(p, 2, 4);
    rm.onFollowerFetch(p, 3, 1);
    clock.advance(15);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(isrChanges.length, 0, "within the lag time");
    clock.advance(10);
    rm.onFollowerFetch(p, 2, 4); // follower 2 keeps up
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(isrChanges.length, 1);
    assert.deepEqual(isrChanges[0]!.newIsr, [1, 2]);
    // Until the controller commits it, the HW still waits for follower 3.
    assert.equal(p.highWatermark, 1);
  }, 20);
});

Deno.test("ReplicaManager as leader: the HW waits for a member whose ISR expansion is pending", async () => {
  // Kafka's maximal ISR: were the HW computed over the committed ISR only, an acks=all
  // write could be acknowledged without the joiner, which then commits into the ISR
  // without it and may be elected.
  await withManager(1, async (rm, _clock, isrChanges) => {
    let image = change(clusterImage(), { isr: [1, 2] });
    await rm.applyImage(image);
    const p = rm.getPartition("t", 0)!;
    const a = rm.appendAsLeader(p, batch(5));
    await p.waitLocalDurable(a.lastOffset);
    rm.onFollowerFetch(p, 2, 5);
    rm.onFollowerFetch(p, 3, 5);
    assert.deepEqual(isrChanges.map((c) => [...c.newIsr]), [[1, 2, 3]]);
    const b = rm.appendAsLeader(p, batch(5));
    await p.waitLocalDurable(b.lastOffset);
    rm.onFollowerFetch(p, 2, 10);
    assert.equal(p.highWatermark, 5, "follower 3, joining, holds the HW");
    rm.onFollowerFetch(p, 3, 10);
    assert.equal(p.highWatermark, 10);
    image = change(image, { isr: [1, 2, 3] });
    await rm.applyImage(image);
    assert.deepEqual(p.isr, [1, 2, 3]);
    assert.equal(p.highWatermark, 10);
  });
});

Deno.test("ReplicaManager as leader: an ISR addition the controller may have committed keeps holding the HW (issue 10 §1.1)", async () => {
  // RF 3, ISR {1,2}, leader 1; follower 3 catches up and 1 proposes {1,2,3}; the
  // controller commits it but the answer is lost; the retry finds the partition epoch
  // moved on (INVALID_UPDATE_VERSION) while 1's image still lags. Had 1 dropped the
  // proposal, its HW would pass 3, which the committed ISR makes electable: acked writes
  // lost when 1 dies and 3 is elected.
  const dir = await Deno.makeTempDir({ prefix: "tidelog-rm-" });
  const clock = new ManualClock(1_000_000);
  const sent: IsrChange[] = [];
  const answers: (() => Promise<{ errorCode: number }>)[] = [
    () => Promise.reject(new Error("No answer within 5000 ms")),
    () => Promise.resolve({ errorCode: ErrorCode.INVALID_UPDATE_VERSION }),
  ];
  const rm = new ReplicaManager({
    topicsDir: dir,
    nodeId: 1,
    flush: { kind: "always" },
    clock,
    replicaLagTimeMaxMs: 2000,
    alterIsr: (req) => {
      sent.push(req);
      return (answers.shift() ??
        (() => Promise.resolve({ errorCode: ErrorCode.INVALID_UPDATE_VERSION })))();
    },
  });
  try {
    await rm.applyImage(change(clusterImage(), { isr: [1, 2] }));
    const p = rm.getPartition("t", 0)!;
    const a = rm.appendAsLeader(p, batch(5));
    await p.waitLocalDurable(a.lastOffset);
    rm.onFollowerFetch(p, 2, 5);
    rm.onFollowerFetch(p, 3, 5);
    assert.deepEqual(sent.map((c) => [...c.newIsr]), [[1, 2, 3]]);
    // The answer is lost; a while later the same request goes again and is refused.
    await new Promise((r) => setTimeout(r, 10));
    clock.advance(1000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sent.length, 2, "re-sent once");
    assert.deepEqual([...sent[1]!.newIsr], [1, 2, 3]);
    assert.equal(sent[1]!.partitionEpoch, sent[0]!.partitionEpoch, "the same request");
    await new Promise((r) => setTimeout(r, 10));
    // More writes; follower 3 falls behind.
    const b = rm.appendAsLeader(p, batch(5));
    await p.waitLocalDurable(b.lastOffset);
    rm.onFollowerFetch(p, 2, 10);
    assert.equal(p.highWatermark, 5, "3 may be in the committed ISR: the HW waits for it");
    // No proposal built from the stale image replaces the unresolved one, however long.
    clock.advance(10_000);
    rm.onFollowerFetch(p, 2, 10);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sent.length, 2);
    assert.equal(p.highWatermark, 5);
    // The image catches up: the change was committed.
    await rm.applyImage(
      change(change(clusterImage(), { isr: [1, 2] }), { isr: [1, 2, 3] }),
    );
    assert.deepEqual(p.isr, [1, 2, 3]);
    // Resolved; only now a new decision, on the committed state: 3 lags, so it goes.
    assert.deepEqual(p.pendingIsr?.newIsr, [1, 2]);
    assert.equal(p.pendingIsr?.partitionEpoch, p.partitionEpoch);
  } finally {
    await rm.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Partition.truncateTo at or past the log end still drops the later leader epochs (issue 10 §1.2)", async () => {
  // A follower that led epoch 5 briefly at offset 3 without appending, whose leader
  // answers OffsetForLeaderEpoch(5) with an epoch it lacks: the truncation point is its
  // own log end. Unless epoch 5 goes, it asks about epoch 5 again, forever.
  await withManager(2, async (rm) => {
    await rm.applyImage(clusterImage());
    const p = rm.getPartition("t", 0)!;
    const fetched = [
      buildBatch({ records: [{ value: "a" }], baseOffset: 0, partitionLeaderEpoch: 0 }),
      buildBatch({
        records: [{ value: "b" }, { value: "c" }],
        baseOffset: 1,
        partitionLeaderEpoch: 3,
      }),
    ];
    await p.waitLocalDurable(p.appendAsFollower(fetched, fetched.map((b) => validateBatch(b))));
    p.leaderEpochCache.assign(5, 3);
    assert.equal(p.leaderEpochCache.latestEpoch, 5);
    await p.truncateTo(3);
    assert.equal(p.log.logEndOffset, 3, "nothing cut");
    assert.equal(p.leaderEpochCache.latestEpoch, 3, "the empty epoch is gone");
  });
});

Deno.test("ReplicaManager: a partition whose files cannot be made durable is a storage failure (the node stops)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tidelog-rm-" });
  const failures: Error[] = [];
  // Every fsync fails, as on a failing disk: opening the new partition's log cannot finish.
  const failingFs: FileSystem = {
    ...denoFs,
    open: async (path, options) => {
      const h = await denoFs.open(path, options);
      const fail = () => Promise.reject(new Error("Input/output error (os error 5)"));
      return new Proxy(h, {
        get(target, key) {
          if (key === "sync" || key === "syncData") return fail;
          const value = Reflect.get(target, key);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    },
  };
  const rm = new ReplicaManager({
    topicsDir: dir,
    nodeId: 1,
    flush: { kind: "always" },
    clock: new ManualClock(1_000_000),
    replicaLagTimeMaxMs: 10_000,
    fs: failingFs,
    alterIsr: () => Promise.resolve({ errorCode: ErrorCode.NONE }),
    onStorageFailure: (err) => failures.push(err),
  });
  try {
    await assert.rejects(rm.applyImage(clusterImage()), /Input\/output error/);
    assert.equal(failures.length, 1, "reported as a storage failure");
    assert.equal(rm.getPartition("t", 0), undefined);
  } finally {
    await rm.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ReplicaManager refuses partitions that would not fit in the file descriptor limit, opening none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tidelog-rm-" });
  let limit = 600;
  const fs: FileSystem = { ...denoFs, descriptors: () => ({ open: 100, limit }) };
  const failures: Error[] = [];
  const rm = new ReplicaManager({
    topicsDir: dir,
    nodeId: 1,
    flush: { kind: "always" },
    clock: new ManualClock(1),
    fs,
    onStorageFailure: (err) => failures.push(err),
  });
  try {
    // 100 open + 1 partition + the reserve of 512 > 600: refused before anything opens.
    await assert.rejects(rm.applyImage(clusterImage()), /ulimit -n/);
    assert.equal(rm.getPartition("t", 0), undefined);
    assert.equal(failures.length, 1, "a storage failure: the node stops with the message");
    limit = 700;
    await rm.applyImage(clusterImage());
    assert.equal(rm.getPartition("t", 0)?.role, "leader");
  } finally {
    await rm.close();
    await Deno.remove(dir, { recursive: true });
  }
});
