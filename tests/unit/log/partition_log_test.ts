import assert from "node:assert/strict";
import { ManualClock } from "../../../lib/util/clock.ts";
import { OffsetOutOfRangeError } from "../../../lib/util/errors.ts";
import { LogClosedError } from "../../../lib/log/mod.ts";
import { readBatchHeader } from "../../../lib/protocol/record_batch.ts";
import { buildBatch, buildSizedBatch } from "./_batches.ts";
import {
  appendBatches,
  type Appended,
  baseOffsets,
  concat,
  openLog,
  readAll,
  segmentFiles,
  T0,
  testConfig,
  withTempDir,
} from "./_helpers.ts";

Deno.test("PartitionLog.append() assigns offsets and read() returns stored batches", async (t) => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    try {
      const appended: Appended[] = [];
      for (let b = 0; b < 200; b++) {
        const records = 1 + (b % 7);
        appended.push(...appendBatches(plog, 1, records, 10 + (b * 13) % 300, b));
      }
      await t.step("offsets are contiguous from 0", () => {
        let next = 0;
        for (const a of appended) {
          assert.equal(a.baseOffset, next);
          next = a.lastOffset + 1;
        }
        assert.equal(plog.logEndOffset, next);
        assert.equal(plog.logStartOffset, 0);
      });
      await t.step("base offset and leader epoch are rewritten in place", () => {
        const h = readBatchHeader(appended[5]!.batch);
        assert.equal(h.baseOffset, appended[5]!.baseOffset);
        assert.equal(h.partitionLeaderEpoch, 1);
      });
      await t.step("every offset reads back its batch first, byte-exact", () => {
        for (const a of appended) {
          for (let o = a.baseOffset; o <= a.lastOffset; o++) {
            const { records } = plog.read(o, a.batch.length, {});
            assert.deepEqual(records, a.batch, `offset ${o}`);
          }
        }
      });
      await t.step("a large read returns consecutive whole batches", () => {
        const { records } = plog.read(appended[10]!.baseOffset + 1, 1 << 20);
        assert.deepEqual(records, concat(appended.slice(10).map((a) => a.batch)));
      });
      await t.step("maxBytes cuts at a batch boundary", () => {
        const size = appended[3]!.batch.length + appended[4]!.batch.length;
        const { records } = plog.read(appended[3]!.baseOffset, size + 10);
        assert.deepEqual(records, concat([appended[3]!.batch, appended[4]!.batch]));
      });
      await t.step("sizeInBytes counts all batches", () => {
        assert.equal(plog.sizeInBytes, appended.reduce((n, a) => n + a.batch.length, 0));
      });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.append() writes several batches of one call in order", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    try {
      const small = [1, 2, 3].map((n) => buildSizedBatch(n, 20, { seed: n }));
      const r1 = plog.append(small, { leaderEpoch: 3 });
      assert.deepEqual(r1, { baseOffset: 0, lastOffset: 5, logAppendTimeMs: -1 });
      // Over the concatenation limit: written one by one.
      const large = [0, 1, 2, 3, 4].map((n) => buildSizedBatch(1, 100_000, { seed: n }));
      const r2 = plog.append(large, { leaderEpoch: 3, logAppendTimeMs: T0 + 5 });
      assert.deepEqual(r2, { baseOffset: 6, lastOffset: 10, logAppendTimeMs: T0 + 5 });
      assert.deepEqual(baseOffsets(plog.read(0, 1 << 30).records), [0, 1, 3, 6, 7, 8, 9, 10]);
      assert.deepEqual(readAll(plog), concat([...small, ...large]));
      const h = readBatchHeader(large[2]!);
      assert.equal(h.maxTimestamp, T0 + 5);
      assert.equal(h.attributes & 0x08, 0x08);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.append() rejects malformed batches without appending", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    try {
      const good = buildSizedBatch(2, 10);
      const bad = buildSizedBatch(2, 10).subarray(0, 70);
      assert.throws(() => plog.append([good, bad], { leaderEpoch: 0 }), /malformed batch/);
      assert.throws(() => plog.append([], { leaderEpoch: 0 }), RangeError);
      assert.equal(plog.logEndOffset, 0);
      assert.equal(plog.sizeInBytes, 0);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.read() bounds", async (t) => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    try {
      const appended = appendBatches(plog, 10, 5, 100); // offsets 0..49
      await t.step("offset === logEndOffset is empty", () => {
        assert.equal(plog.read(50, 1000).records.length, 0);
      });
      await t.step("OffsetOutOfRange above the end and below the start", () => {
        assert.throws(() => plog.read(51, 1000), OffsetOutOfRangeError);
        assert.throws(() => plog.read(-1, 1000), OffsetOutOfRangeError);
      });
      await t.step("maxOffset excludes batches at or above it", () => {
        const { records } = plog.read(0, 1 << 20, { maxOffset: 20 });
        assert.deepEqual(baseOffsets(records), [0, 5, 10, 15]);
        // 22 lies inside the batch 20..24, whose base is not below maxOffset 21
        assert.equal(plog.read(22, 1 << 20, { maxOffset: 21 }).records.length, 0);
        assert.deepEqual(baseOffsets(plog.read(17, 1 << 20, { maxOffset: 21 }).records), [
          15,
          20,
        ]);
        assert.equal(plog.read(25, 1 << 20, { maxOffset: 25 }).records.length, 0);
      });
      await t.step("maxBytes smaller than the first batch: empty unless minOneMessage", () => {
        assert.equal(plog.read(7, 10).records.length, 0);
        assert.deepEqual(plog.read(7, 10, { minOneMessage: true }).records, appended[1]!.batch);
        assert.deepEqual(
          plog.read(7, appended[1]!.batch.length + 5, { minOneMessage: true }).records,
          appended[1]!.batch,
        );
      });
      await t.step("minOneMessage still honours maxOffset", () => {
        assert.equal(plog.read(7, 10, { minOneMessage: true, maxOffset: 5 }).records.length, 0);
      });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog rolls a segment at segmentBytes", async (t) => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 4096, indexIntervalBytes: 256 });
    let plog = await openLog(dir, config);
    try {
      const appended = appendBatches(plog, 300, 3, 50); // ~240 bytes each
      await t.step("segments never exceed segmentBytes and are named by base offset", () => {
        const files = segmentFiles(dir);
        assert.ok(files.length > 10, `${files.length} segments`);
        assert.equal(files.length, plog.segmentCount);
        assert.equal(files[0], "00000000000000000000.log");
        for (const f of files) assert.ok(Deno.statSync(`${dir}/${f}`).size <= 4096);
        assert.equal(plog.stats().rolls, files.length - 1);
        for (const f of files.slice(0, -1)) {
          const base = f.slice(0, 20);
          assert.ok(Deno.statSync(`${dir}/${base}.index`).size > 0);
          assert.ok(Deno.statSync(`${dir}/${base}.timeindex`).size > 0);
        }
      });
      await t.step("every offset is found through the segment and offset indexes", () => {
        for (const a of appended) {
          for (let o = a.baseOffset; o <= a.lastOffset; o++) {
            assert.deepEqual(plog.read(o, 1, { minOneMessage: true }).records, a.batch);
          }
        }
      });
      await t.step("a read stays within one segment", () => {
        const { records } = plog.read(0, 1 << 20);
        assert.ok(records.length <= 4096);
        assert.ok(records.length > 3000);
      });
      await t.step("offsets and indexes survive a reopen", async () => {
        await plog.close();
        plog = await openLog(dir, config);
        assert.equal(plog.logEndOffset, 900);
        for (const a of appended) {
          assert.deepEqual(plog.read(a.lastOffset, 1, { minOneMessage: true }).records, a.batch);
        }
        assert.deepEqual(readAll(plog), concat(appended.map((a) => a.batch)));
        assert.equal(plog.offsetForTimestamp(T0 + 1000 * 123 + 1)?.offset, 123 * 3 + 1);
      });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog rolls a segment older than segmentMs", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    const plog = await openLog(dir, testConfig({ segmentMs: 60_000 }), clock);
    try {
      appendBatches(plog, 3, 1, 10);
      clock.advance(60_000);
      appendBatches(plog, 1, 1, 10, 3);
      assert.equal(plog.segmentCount, 1);
      clock.advance(1);
      appendBatches(plog, 1, 1, 10, 4);
      assert.equal(plog.segmentCount, 2);
      assert.deepEqual(segmentFiles(dir), [
        "00000000000000000000.log",
        "00000000000000000004.log",
      ]);
      clock.advance(30_000);
      appendBatches(plog, 1, 1, 10, 5);
      assert.equal(plog.segmentCount, 2);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.offsetForTimestamp() finds the first record at or after a time", async (t) => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 2048, indexIntervalBytes: 128 });
    const plog = await openLog(dir, config);
    try {
      // Batch b holds 4 records at T0 + 1000b + {0,1,2,3}: offsets 4b..4b+3.
      appendBatches(plog, 100, 4, 30);
      await t.step("exact record inside uncompressed batches, across segments", () => {
        assert.ok(plog.segmentCount > 5);
        for (const b of [0, 1, 17, 50, 99]) {
          for (let i = 0; i < 4; i++) {
            assert.deepEqual(plog.offsetForTimestamp(T0 + 1000 * b + i), {
              offset: 4 * b + i,
              timestamp: T0 + 1000 * b + i,
            });
          }
          // Between batches: the next batch's first record.
          if (b < 99) {
            assert.deepEqual(plog.offsetForTimestamp(T0 + 1000 * b + 500), {
              offset: 4 * (b + 1),
              timestamp: T0 + 1000 * (b + 1),
            });
          }
        }
      });
      await t.step("before everything: offset 0; after everything: null", () => {
        assert.equal(plog.offsetForTimestamp(0)?.offset, 0);
        assert.equal(plog.offsetForTimestamp(T0 + 1000 * 99 + 4), null);
      });
      await t.step("max timestamp is the last record", () => {
        assert.deepEqual(plog.maxTimestamp(), { offset: 399, timestamp: T0 + 99_003 });
      });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.offsetForTimestamp() with out-of-order, compressed and LogAppendTime batches", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    try {
      // offsets 0..2: timestamps 50, 10, 30 (out of order inside the batch)
      plog.append([
        buildBatch({
          records: [{ value: "a", timestampMs: 50 }, { value: "b", timestampMs: 10 }, {
            value: "c",
            timestampMs: 30,
          }],
        }),
      ], { leaderEpoch: 0 });
      // offsets 3..4: compressed, max 80
      plog.append([
        buildBatch({
          records: [{ value: "d", timestampMs: 70 }, { value: "e", timestampMs: 80 }],
          compression: 1,
        }),
      ], { leaderEpoch: 0 });
      // offsets 5..6: LogAppendTime 100
      plog.append([buildBatch({ records: [{ value: "f" }, { value: "g" }] })], {
        leaderEpoch: 0,
        logAppendTimeMs: 100,
      });
      // offsets 7: 60
      plog.append([buildBatch({ records: [{ value: "h", timestampMs: 60 }] })], {
        leaderEpoch: 0,
      });
      assert.deepEqual(plog.offsetForTimestamp(20), { offset: 0, timestamp: 50 });
      assert.deepEqual(plog.offsetForTimestamp(5), { offset: 0, timestamp: 50 });
      assert.deepEqual(plog.offsetForTimestamp(51), { offset: 3, timestamp: 80 });
      assert.deepEqual(plog.offsetForTimestamp(90), { offset: 5, timestamp: 100 });
      assert.equal(plog.offsetForTimestamp(101), null);
      assert.deepEqual(plog.maxTimestamp(), { offset: 5, timestamp: 100 });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.maxTimestamp() picks the exact record, null when empty", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, testConfig({ segmentBytes: 200 }));
    try {
      assert.equal(plog.maxTimestamp(), null);
      assert.equal(plog.offsetForTimestamp(0), null);
      for (const ts of [[5, 9, 7], [20, 40, 30], [11, 12]]) {
        plog.append([buildBatch({ records: ts.map((t) => ({ value: "x", timestampMs: t })) })], {
          leaderEpoch: 0,
        });
      }
      assert.ok(plog.segmentCount >= 2);
      assert.deepEqual(plog.maxTimestamp(), { offset: 4, timestamp: 40 });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.appendAsFollower() keeps the leader's offsets", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    try {
      const b1 = buildBatch({ records: [{ value: "a" }, { value: "b" }], baseOffset: 0 });
      const b2 = buildBatch({ records: [{ value: "c" }], baseOffset: 2, partitionLeaderEpoch: 7 });
      assert.deepEqual(plog.appendAsFollower([b1, b2]), {
        baseOffset: 0,
        lastOffset: 2,
        logAppendTimeMs: -1,
      });
      assert.equal(readBatchHeader(plog.read(2, 100).records).partitionLeaderEpoch, 7);
      // Offsets may skip (a compacted leader log) but never go back.
      const back = buildBatch({ records: [{ value: "d" }], baseOffset: 2 });
      assert.throws(() => plog.appendAsFollower([back]), RangeError);
      assert.equal(plog.logEndOffset, 3);
      const gap = buildBatch({ records: [{ value: "e" }], baseOffset: 5 });
      assert.deepEqual(plog.appendAsFollower([gap]), {
        baseOffset: 5,
        lastOffset: 5,
        logAppendTimeMs: -1,
      });
      assert.equal(plog.logEndOffset, 6);
      assert.equal(readBatchHeader(plog.read(3, 100).records).baseOffset, 5);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.truncateTo() removes the batch containing the offset and everything after", async (t) => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 1024, indexIntervalBytes: 100 });
    let plog = await openLog(dir, config);
    try {
      const appended = appendBatches(plog, 40, 2, 100); // ~290 bytes, 3 per segment
      await t.step("into an older segment, mid-batch", async () => {
        await plog.waitDurable(plog.logEndOffset - 1);
        assert.equal(plog.durableEndOffset, 80);
        await plog.truncateTo(31); // batch 15 holds 30..31
        assert.equal(plog.logEndOffset, 30);
        assert.equal(plog.durableEndOffset, 30);
        assert.deepEqual(readAll(plog), concat(appended.slice(0, 15).map((a) => a.batch)));
        assert.equal(segmentFiles(dir).length, plog.segmentCount);
      });
      await t.step("appends continue from the new end", async () => {
        const more = appendBatches(plog, 5, 2, 100, 100);
        assert.equal(more[0]!.baseOffset, 30);
        await plog.waitDurable(plog.logEndOffset - 1);
        assert.deepEqual(
          readAll(plog),
          concat([...appended.slice(0, 15), ...more].map((a) => a.batch)),
        );
        await plog.close();
        plog = await openLog(dir, config);
        assert.deepEqual(
          readAll(plog),
          concat([...appended.slice(0, 15), ...more].map((a) => a.batch)),
        );
      });
      await t.step("at or past the end: nothing", async () => {
        const end = plog.logEndOffset;
        await plog.truncateTo(end);
        await plog.truncateTo(end + 10);
        assert.equal(plog.logEndOffset, end);
      });
      await t.step("to 0 empties the log", async () => {
        await plog.truncateTo(0);
        assert.equal(plog.logEndOffset, 0);
        assert.equal(plog.sizeInBytes, 0);
        assert.deepEqual(segmentFiles(dir), ["00000000000000000000.log"]);
        appendBatches(plog, 1, 1, 10);
        assert.equal(plog.logEndOffset, 1);
      });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.close() is idempotent and later calls throw LogClosedError", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    appendBatches(plog, 2, 1, 10);
    await Promise.all([plog.close(), plog.close()]);
    await plog.close();
    assert.throws(() => appendBatches(plog, 1, 1, 10), LogClosedError);
    assert.throws(() => plog.read(0, 100), LogClosedError);
    await assert.rejects(plog.waitDurable(5), LogClosedError);
    await plog.waitDurable(1); // already durable
  });
});

Deno.test("PartitionLog.delete() removes the directory", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    appendBatches(plog, 2, 1, 10);
    await plog.delete();
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
  });
});

Deno.test("PartitionLog.open() rejects an invalid config", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(openLog(dir, testConfig({ segmentBytes: 0 })), RangeError);
    await assert.rejects(
      openLog(dir, testConfig({ flush: { kind: "interval", ms: 0 } })),
      RangeError,
    );
  });
});

Deno.test("PartitionLog.truncateFullyAndStartAt() empties the log and restarts it, durably", async () => {
  await withTempDir(async (dir) => {
    let plog = await openLog(dir, testConfig({ segmentBytes: 1024 }));
    try {
      for (let i = 0; i < 10; i++) plog.append([buildSizedBatch(1, 300)], { leaderEpoch: 0 });
      await plog.waitDurable(plog.logEndOffset - 1);
      const waiting = plog.waitDurable(1000);
      await plog.truncateFullyAndStartAt(5000);
      await assert.rejects(waiting);
      assert.equal(plog.logStartOffset, 5000);
      assert.equal(plog.logEndOffset, 5000);
      assert.equal(plog.durableEndOffset, 5000);
      assert.throws(() => plog.read(0, 100), OffsetOutOfRangeError);
      assert.deepEqual(segmentFiles(dir), ["00000000000000005000.log"]);
      const next = buildBatch({ records: [{ value: "x" }], baseOffset: 5000 });
      assert.equal(plog.appendAsFollower([next]).lastOffset, 5000);
      await plog.waitDurable(5000);
    } finally {
      await plog.close();
    }
    plog = await openLog(dir);
    try {
      assert.equal(plog.logStartOffset, 5000);
      assert.equal(plog.logEndOffset, 5001);
    } finally {
      await plog.close();
    }
  });
});
