import assert from "node:assert/strict";
import type { PartitionLog } from "../../../lib/log/mod.ts";
import {
  encodeLeaderEpochCheckpoint,
  LEADER_EPOCH_CHECKPOINT_FILE,
  LeaderEpochFileCache,
  parseLeaderEpochCheckpoint,
  readLeaderEpochCheckpoint,
} from "../../../lib/replication/mod.ts";
import { denoFs } from "../../../lib/runtime/fs.ts";
import { buildBatch } from "../log/_batches.ts";
import { openLog, testConfig, withTempDir } from "../log/_helpers.ts";

/** Appends one batch of `records` records in `epoch`. */
function append(plog: PartitionLog, epoch: number, records = 2): void {
  const batch = buildBatch({
    records: Array.from({ length: records }, (_, i) => ({ value: `v${i}` })),
  });
  plog.append([batch], { leaderEpoch: epoch });
}

function checkpointPath(plog: PartitionLog): string {
  return `${plog.dir}/${LEADER_EPOCH_CHECKPOINT_FILE}`;
}

Deno.test("leader-epoch-checkpoint format is Kafka's", async (t) => {
  await t.step("encode and parse round-trip", () => {
    const entries = [{ epoch: 0, startOffset: 0 }, { epoch: 3, startOffset: 1234 }];
    const text = encodeLeaderEpochCheckpoint(entries);
    assert.equal(text, "0\n2\n0 0\n3 1234\n");
    assert.deepEqual(parseLeaderEpochCheckpoint(text), entries);
    assert.deepEqual(parseLeaderEpochCheckpoint("0\n0\n"), []);
  });
  for (
    const bad of [
      "",
      "1\n0\n",
      "0\n2\n0 0\n",
      "0\n1\n0 0\n1 5\n",
      "0\n1\nx 0\n",
      "0\n1\n-1 0\n",
      "0\n2\n1 5\n1 9\n",
      "0\n2\n2 5\n1 9\n",
    ]
  ) {
    await t.step(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseLeaderEpochCheckpoint(bad), SyntaxError);
    });
  }
});

Deno.test("LeaderEpochFileCache persists and reconciles with the log", async (t) => {
  await t.step("changes reach the file; reopening loads them", async () => {
    await withTempDir(async (dir) => {
      const plog = await openLog(dir);
      const cache = await LeaderEpochFileCache.open(plog);
      assert.deepEqual(cache.entries, []);
      assert.equal(await readLeaderEpochCheckpoint(denoFs, dir), null);
      cache.assign(0, 0);
      append(plog, 0);
      cache.assign(2, plog.logEndOffset);
      append(plog, 2, 3);
      await cache.flush();
      assert.equal(Deno.readTextFileSync(checkpointPath(plog)), "0\n2\n0 0\n2 2\n");
      await cache.close();
      assert.throws(() => cache.assign(3, 5), TypeError);
      await plog.close();

      const plog2 = await openLog(dir);
      const cache2 = await LeaderEpochFileCache.open(plog2);
      assert.deepEqual(cache2.entries, [{ epoch: 0, startOffset: 0 }, {
        epoch: 2,
        startOffset: 2,
      }]);
      assert.deepEqual(cache2.endOffsetFor(0, plog2.logEndOffset), { epoch: 0, endOffset: 2 });
      assert.deepEqual(cache2.endOffsetFor(2, plog2.logEndOffset), { epoch: 2, endOffset: 5 });
      await cache2.close();
      await plog2.close();
    });
  });

  for (
    const [name, damage] of [
      ["missing", (path: string) => Deno.removeSync(path)],
      ["corrupt", (path: string) => Deno.writeTextFileSync(path, "0\n3\n0 0\ngarbage")],
      ["empty", (path: string) => Deno.writeTextFileSync(path, "")],
      [
        "inconsistent with the log",
        (path: string) => Deno.writeTextFileSync(path, "0\n1\n7 0\n"),
      ],
    ] as const
  ) {
    await t.step(`a checkpoint that is ${name} is rebuilt from the batches`, async () => {
      await withTempDir(async (dir) => {
        const plog = await openLog(dir);
        const cache = await LeaderEpochFileCache.open(plog);
        for (const epoch of [0, 0, 1, 4, 4]) {
          cache.assign(epoch, plog.logEndOffset);
          append(plog, epoch);
        }
        await cache.close();
        await plog.close();
        damage(`${dir}/${LEADER_EPOCH_CHECKPOINT_FILE}`);

        const plog2 = await openLog(dir);
        const cache2 = await LeaderEpochFileCache.open(plog2);
        const expected = [
          { epoch: 0, startOffset: 0 },
          { epoch: 1, startOffset: 4 },
          { epoch: 4, startOffset: 6 },
        ];
        assert.deepEqual(cache2.entries, expected);
        assert.deepEqual(await readLeaderEpochCheckpoint(denoFs, dir), expected);
        await cache2.close();
        await plog2.close();
      });
    });
  }

  await t.step("a stale checkpoint gets the epochs the log has beyond it", async () => {
    await withTempDir(async (dir) => {
      const plog = await openLog(dir);
      const cache = await LeaderEpochFileCache.open(plog);
      cache.assign(0, 0);
      append(plog, 0);
      await cache.close();
      const stale = Deno.readTextFileSync(checkpointPath(plog));
      // Epochs 2 and 5 are written but (as after a crash) never reach the file.
      append(plog, 2);
      append(plog, 5);
      append(plog, 5);
      await plog.close();
      Deno.writeTextFileSync(`${dir}/${LEADER_EPOCH_CHECKPOINT_FILE}`, stale);

      const plog2 = await openLog(dir);
      const cache2 = await LeaderEpochFileCache.open(plog2);
      assert.deepEqual(cache2.entries, [
        { epoch: 0, startOffset: 0 },
        { epoch: 2, startOffset: 2 },
        { epoch: 5, startOffset: 4 },
      ]);
      await cache2.close();
      await plog2.close();
    });
  });

  await t.step("entries at or past the log end are dropped on open", async () => {
    await withTempDir(async (dir) => {
      const plog = await openLog(dir);
      const cache = await LeaderEpochFileCache.open(plog);
      cache.assign(0, 0);
      append(plog, 0);
      cache.assign(1, 2);
      append(plog, 1);
      cache.assign(3, 4); // epoch 3 began but wrote nothing
      await cache.close();
      await plog.close();
      // The log lost the epoch-1 batch (a truncation the checkpoint did not see).
      const plog2 = await openLog(dir);
      await plog2.truncateTo(2);
      await plog2.close();

      const plog3 = await openLog(dir);
      const cache3 = await LeaderEpochFileCache.open(plog3);
      assert.deepEqual(cache3.entries, [{ epoch: 0, startOffset: 0 }]);
      await cache3.close();
      await plog3.close();
    });
  });

  await t.step("truncateFromStart follows retention and persists", async () => {
    await withTempDir(async (dir) => {
      const plog = await openLog(dir, testConfig({ segmentBytes: 200 }));
      const cache = await LeaderEpochFileCache.open(plog);
      for (const epoch of [0, 1, 1, 2]) {
        cache.assign(epoch, plog.logEndOffset);
        append(plog, epoch);
      }
      await plog.advanceLogStartOffset(5);
      assert.equal(plog.logStartOffset, 5);
      cache.truncateFromStart(plog.logStartOffset);
      assert.deepEqual(cache.entries, [{ epoch: 1, startOffset: 5 }, { epoch: 2, startOffset: 6 }]);
      await cache.close();
      await plog.close();
      const plog2 = await openLog(dir, testConfig({ segmentBytes: 200 }));
      const cache2 = await LeaderEpochFileCache.open(plog2);
      assert.deepEqual(cache2.entries, [{ epoch: 1, startOffset: 5 }, {
        epoch: 2,
        startOffset: 6,
      }]);
      await cache2.close();
      await plog2.close();
    });
  });
});
