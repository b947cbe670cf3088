import assert from "node:assert/strict";
import { ManualClock } from "../../../lib/util/clock.ts";
import { OffsetOutOfRangeError } from "../../../lib/util/errors.ts";
import { LogTruncatedError, type PartitionLog } from "../../../lib/log/mod.ts";
import {
  appendBatches,
  concat,
  openLog,
  readAll,
  segmentFiles,
  T0,
  testConfig,
  withTempDir,
} from "./_helpers.ts";

/** Everything is committed: the high watermark is at the log end. */
const all = (plog: PartitionLog) => ({ maxOffset: plog.logEndOffset });

// ~330-byte batches of 2 records (offsets 2b, 2b+1, timestamps T0 + 1000b + i), 3 per segment.
const config = testConfig({ segmentBytes: 1000, indexIntervalBytes: 200 });

Deno.test("PartitionLog.applyRetention() by time deletes expired segments, never the active one", async (t) => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    let plog = await openLog(dir, { ...config, retentionMs: 10_000 }, clock);
    try {
      const appended = appendBatches(plog, 30, 2, 120); // 10 segments
      assert.equal(plog.segmentCount, 10);
      await t.step("nothing has expired yet", async () => {
        assert.equal(await plog.applyRetention(T0 + 12_000, all(plog)), 0);
        assert.equal(plog.logStartOffset, 0);
      });
      await t.step("segments whose newest record is older than retention go", async () => {
        // Segment k holds batches 3k..3k+2, newest timestamp T0 + 1000(3k+2) + 1.
        // At now = T0 + 20_500: expired when 1000(3k+2) + 1 < 10_500 → k = 0, 1, 2.
        assert.equal(await plog.applyRetention(T0 + 20_500, all(plog)), 3);
        assert.equal(plog.logStartOffset, 18);
        assert.equal(segmentFiles(dir).length, 7);
        assert.equal(segmentFiles(dir)[0], "00000000000000000018.log");
        assert.throws(() => plog.read(17, 1000), OffsetOutOfRangeError);
        assert.deepEqual(readAll(plog), concat(appended.slice(9).map((a) => a.batch)));
      });
      await t.step("the clock is the default time source", async () => {
        clock.set(T0 + 23_500);
        assert.equal(await plog.applyRetention(undefined, all(plog)), 1);
        assert.equal(plog.logStartOffset, 24);
      });
      await t.step("everything expired: the active segment stays", async () => {
        assert.equal(await plog.applyRetention(T0 + 10_000_000, all(plog)), 5);
        assert.equal(plog.segmentCount, 1);
        assert.equal(plog.logStartOffset, 54);
        assert.equal(plog.logEndOffset, 60);
      });
      await t.step("the log start offset survives a reopen", async () => {
        await plog.close();
        plog = await openLog(dir, { ...config, retentionMs: 10_000 }, clock);
        assert.equal(plog.logStartOffset, 54);
        assert.equal(plog.logEndOffset, 60);
        assert.deepEqual(readAll(plog), concat(appended.slice(27).map((a) => a.batch)));
      });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.applyRetention() by bytes deletes the oldest segments over the limit", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, config);
    try {
      appendBatches(plog, 30, 2, 120);
      const segSize = plog.sizeInBytes / 10;
      plog.updateConfig({ ...config, retentionBytes: Math.floor(segSize * 4.5) });
      assert.equal(await plog.applyRetention(undefined, all(plog)), 5);
      assert.equal(plog.segmentCount, 5);
      assert.ok(plog.sizeInBytes <= segSize * 5 + 1);
      assert.equal(plog.logStartOffset, 30);
      assert.equal(await plog.applyRetention(undefined, all(plog)), 0);
      plog.updateConfig({ ...config, retentionBytes: 0 });
      assert.equal(await plog.applyRetention(undefined, all(plog)), 4);
      assert.equal(plog.segmentCount, 1);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.advanceLogStartOffset() moves the start, persists it, deletes whole segments below", async () => {
  await withTempDir(async (dir) => {
    let plog = await openLog(dir, config);
    try {
      const appended = appendBatches(plog, 30, 2, 120);
      await plog.advanceLogStartOffset(13); // inside batch 6 (12..13), segment 2 (12..17)
      assert.equal(plog.logStartOffset, 13);
      assert.equal(segmentFiles(dir)[0], "00000000000000000012.log");
      assert.throws(() => plog.read(12, 1000), OffsetOutOfRangeError);
      // A read at the start returns the batch containing it.
      assert.deepEqual(plog.read(13, 1, { minOneMessage: true }).records, appended[6]!.batch);
      assert.equal(plog.offsetForTimestamp(0)?.offset, 13);
      await plog.advanceLogStartOffset(5); // backwards: ignored
      assert.equal(plog.logStartOffset, 13);
      await assert.rejects(plog.advanceLogStartOffset(61), OffsetOutOfRangeError);
      await plog.close();
      plog = await openLog(dir, config);
      assert.equal(plog.logStartOffset, 13);
      assert.throws(() => plog.read(12, 1000), OffsetOutOfRangeError);
      assert.deepEqual(readAll(plog), concat(appended.slice(6).map((a) => a.batch)));
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.applyRetention() after a reopen uses the loaded time indexes", async () => {
  await withTempDir(async (dir) => {
    const cfg = { ...config, retentionMs: 10_000 };
    let plog = await openLog(dir, cfg);
    try {
      appendBatches(plog, 30, 2, 120);
      await plog.close();
      plog = await openLog(dir, cfg);
      assert.equal(await plog.applyRetention(T0 + 20_500, all(plog)), 3);
      assert.equal(plog.logStartOffset, 18);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog retention and truncation interleave safely with appends and fsyncs", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, { ...config, retentionBytes: 3000 });
    try {
      const waits: Promise<void>[] = [];
      for (let i = 0; i < 30; i++) {
        const [a] = appendBatches(plog, 1, 2, 120, i);
        waits.push(plog.waitDurable(a!.lastOffset));
        // The first fsync round starts at the next turn, covering offsets 0-1 only.
        if (i === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      // Both start while the first fsync round is in flight; appends keep coming.
      const retention = plog.applyRetention(undefined, all(plog));
      const truncation = plog.truncateTo(50);
      for (let i = 30; i < 35; i++) {
        const [a] = appendBatches(plog, 1, 2, 120, i);
        waits.push(plog.waitDurable(a!.lastOffset));
      }
      // Writes at offsets 50.. are truncated before they are durable: their waiters fail.
      const late = waits.splice(25);
      const lateRejected = Promise.all(late.map((w) => assert.rejects(w, LogTruncatedError)));
      assert.ok(await retention > 0);
      await truncation;
      await lateRejected;
      // The truncation ran after the 5 late appends: offsets 50.. are gone.
      assert.equal(plog.logEndOffset, 50);
      const [next] = appendBatches(plog, 1, 2, 120, 99);
      assert.equal(next!.baseOffset, 50);
      await plog.waitDurable(51);
      await Promise.all(waits);
      assert.equal(plog.durableEndOffset, 52);
      assert.deepEqual(segmentFiles(dir).length, plog.segmentCount);
      assert.ok(plog.logStartOffset > 0);
      assert.equal(readAll(plog).length, plog.sizeInBytes);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.applyRetention() never deletes a segment reaching the high watermark (maxOffset)", async (t) => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, { ...config, retentionMs: 10_000 });
    try {
      appendBatches(plog, 30, 2, 120); // segment k holds offsets 6k..6k+5
      const late = T0 + 10_000_000; // every segment has expired
      await t.step("without a bound, nothing is deleted by time or size", async () => {
        assert.equal(await plog.applyRetention(late), 0);
        assert.equal(plog.logStartOffset, 0);
        assert.equal(plog.segmentCount, 10);
      });
      await t.step("a segment goes only if the next one starts at or below maxOffset", async () => {
        // Segment 1 ends below 12 <= 13, segment 2 (12..17) holds offset 13: it stays.
        assert.equal(await plog.applyRetention(late, { maxOffset: 13 }), 2);
        assert.equal(plog.logStartOffset, 12);
        assert.equal(segmentFiles(dir)[0], "00000000000000000012.log");
        assert.equal(await plog.applyRetention(late, { maxOffset: 17 }), 0);
        assert.equal(await plog.applyRetention(late, { maxOffset: 18 }), 1);
        assert.equal(plog.logStartOffset, 18);
      });
      await t.step("the size limit is bounded the same way", async () => {
        plog.updateConfig({ ...config, retentionBytes: 0 });
        assert.equal(await plog.applyRetention(late, { maxOffset: 30 }), 2);
        assert.equal(plog.logStartOffset, 30);
      });
      await t.step("a bound past the log end still keeps the active segment", async () => {
        assert.equal(await plog.applyRetention(late, { maxOffset: 1000 }), 4);
        assert.equal(plog.segmentCount, 1);
        assert.equal(plog.logStartOffset, 54);
      });
    } finally {
      await plog.close();
    }
  });
});
