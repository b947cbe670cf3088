/**
 * The log cleaner on real partition logs: random keys, values, tombstones, codecs and
 * segment sizes (the latest record of every key survives at its offset, nothing else
 * below the cleaned point does, nothing is invented), the tombstone horizon, the bounded
 * offset map, and a crash at every file-system step of a segment swap.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { cleanLog, type CleanOptions, OffsetMap } from "../../../lib/log/cleaner/mod.ts";
import type { PartitionLog } from "../../../lib/log/mod.ts";
import { PartitionLog as PartitionLogClass } from "../../../lib/log/mod.ts";
import { readBatchHeader } from "../../../lib/protocol/record_batch.ts";
import {
  DELETE_HORIZON_BIT,
  encodeControlBatch,
  encodeRecordBatch,
  readBatchRecords,
} from "../../../lib/protocol/record_codec.ts";
import { denoFs, type FileSystem } from "../../../lib/runtime/fs.ts";
import { systemTimers } from "../../../lib/runtime/timers.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { T0, testConfig, withTempDir } from "./_helpers.ts";
import { buildCodecBatch } from "./_batches.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One produced record of the model: offset, key, value (null: a tombstone). */
interface Entry {
  offset: number;
  key: string;
  value: string | null;
}

/** A batch of `entries` (offsets from 0, as a producer sends them) with codec `codec`. */
function batchOf(entries: { key: string; value: string | null }[], codec: number): Uint8Array {
  return buildCodecBatch(
    entries.map((e) => ({
      key: encoder.encode(e.key),
      value: e.value === null ? null : encoder.encode(e.value),
    })),
    codec,
    T0,
  );
}

/** Every record in the log, in order, with the batches' delete-horizon flags. */
function contents(plog: PartitionLog): { entries: Entry[]; horizons: number } {
  const entries: Entry[] = [];
  let horizons = 0;
  let offset = plog.logStartOffset;
  while (offset < plog.logEndOffset) {
    const { records } = plog.read(offset, 1 << 20, { minOneMessage: true });
    if (records.length === 0) break;
    let pos = 0;
    while (pos < records.length) {
      const h = readBatchHeader(records, pos);
      const batch = records.subarray(pos, pos + h.sizeInBytes);
      if ((h.attributes & DELETE_HORIZON_BIT) !== 0) horizons++;
      for (const r of readBatchRecords(batch).records) {
        entries.push({
          offset: r.offset,
          key: decoder.decode(r.key!),
          value: r.value === null ? null : decoder.decode(r.value),
        });
      }
      offset = h.baseOffset + h.lastOffsetDelta + 1;
      pos += h.sizeInBytes;
    }
  }
  return { entries, horizons };
}

/**
 * What a cleaned log must hold: offsets increase; every record is one the producer wrote,
 * at its offset; below `cleanedTo` a record is its key's latest there; every key's latest
 * record overall is present (tombstones too, while they are within their horizon).
 */
function checkCleaned(model: Entry[], plog: PartitionLog, cleanedTo: number): void {
  const { entries } = contents(plog);
  const byOffset = new Map(model.map((e) => [e.offset, e]));
  for (let i = 1; i < entries.length; i++) {
    assert.ok(entries[i]!.offset > entries[i - 1]!.offset, "offsets increase");
  }
  for (const e of entries) assert.deepEqual(byOffset.get(e.offset), e, `offset ${e.offset}`);
  const latestBelow = new Map<string, number>();
  const latest = new Map<string, Entry>();
  for (const e of model) {
    if (e.offset < cleanedTo) latestBelow.set(e.key, e.offset);
    latest.set(e.key, e);
  }
  for (const e of entries) {
    if (e.offset < cleanedTo) {
      assert.equal(e.offset, latestBelow.get(e.key), `offset ${e.offset} of ${e.key} is stale`);
    }
  }
  const present = new Set(entries.map((e) => e.offset));
  for (const e of latest.values()) {
    assert.ok(present.has(e.offset), `the latest record of ${e.key} (offset ${e.offset}) is gone`);
  }
}

function options(plog: PartitionLog, overrides: Partial<CleanOptions> = {}): CleanOptions {
  return {
    nowMs: T0,
    maxOffset: plog.logEndOffset,
    mapBytes: 1 << 20,
    producerLastOffsets: new Set(),
    timers: systemTimers,
    ...overrides,
  };
}

const opArb = fc.array(
  fc.record({
    key: fc.integer({ min: 0, max: 30 }),
    tombstone: fc.boolean(),
    size: fc.integer({ min: 0, max: 300 }),
  }),
  { minLength: 1, maxLength: 8 },
);

Deno.test("cleanLog keeps each key's latest record at its offset and nothing staler below the cleaned point (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(opArb, fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 1024, max: 8000 }),
      fc.integer({ min: 0, max: 3 }),
      async (batches, segmentBytes, mapChoice) => {
        await withTempDir(async (dir) => {
          const config = testConfig({ segmentBytes, compact: true, deleteRetentionMs: 1_000_000 });
          const clock = new ManualClock(T0);
          let plog = await PartitionLogClass.open(dir, config, { clock, name: "c-0" });
          const model: Entry[] = [];
          try {
            for (const [ops, codec] of batches) {
              const entries = ops.map((o) => ({
                key: `k${o.key}`,
                value: o.tombstone && o.key % 3 === 0 ? null : "v".repeat(o.size) + model.length,
              }));
              const r = plog.append([batchOf(entries, codec)], { leaderEpoch: 0 });
              entries.forEach((e, i) => model.push({ offset: r.baseOffset + i, ...e }));
            }
            // A small map (down to 16 slots) makes a cleaning stop early; clean until done.
            const mapBytes = [16 * 16, 16 * 40, 16 * 200, 1 << 20][mapChoice]!;
            let cleanedTo = plog.logStartOffset;
            for (let round = 0; round < 50; round++) {
              const r = await cleanLog(plog, options(plog, { mapBytes }));
              assert.ok(r.completed);
              if (r.cleanedUpTo === cleanedTo) break;
              cleanedTo = r.cleanedUpTo;
              checkCleaned(model, plog, cleanedTo);
            }
            assert.ok(cleanedTo <= plog.activeSegmentBase);
            await plog.close();
            plog = await PartitionLogClass.open(dir, config, { clock, name: "c-0" });
            checkCleaned(model, plog, cleanedTo);
            assert.equal(plog.logEndOffset, model.at(-1)!.offset + 1);
          } finally {
            await plog.close();
          }
        });
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("tombstones get a delete horizon when first cleaned and go once it has passed", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 1024, compact: true, deleteRetentionMs: 10_000 });
    const plog = await PartitionLogClass.open(dir, config, {
      clock: new ManualClock(T0),
      name: "c-0",
    });
    try {
      const model: Entry[] = [];
      const add = (key: string, value: string | null) => {
        const r = plog.append([batchOf([{ key, value }], 0)], { leaderEpoch: 0 });
        model.push({ offset: r.baseOffset, key, value });
      };
      for (let i = 0; i < 40; i++) add(`k${i % 5}`, `value-${i}-${"x".repeat(100)}`);
      add("k0", null); // a tombstone for k0
      for (let i = 0; i < 40; i++) add(`k${1 + (i % 4)}`, `later-${i}-${"y".repeat(100)}`);
      const first = await cleanLog(plog, options(plog));
      let c = contents(plog);
      assert.ok(c.entries.some((e) => e.key === "k0" && e.value === null), "tombstone kept");
      assert.ok(!c.entries.some((e) => e.key === "k0" && e.value !== null), "k0's value gone");
      assert.equal(c.horizons, 1, "the tombstone's batch has its delete horizon");
      // Within the horizon: still there.
      add("k1", "more");
      await cleanLog(plog, options(plog, { nowMs: T0 + 5_000 }));
      assert.ok(contents(plog).entries.some((e) => e.key === "k0"));
      // Past it: gone, and nothing else of k0.
      add("k2", "more");
      const last = await cleanLog(plog, options(plog, { nowMs: T0 + 20_000 }));
      c = contents(plog);
      assert.ok(!c.entries.some((e) => e.key === "k0"), "tombstone removed after its horizon");
      assert.ok(last.tombstonesRemoved >= 1 && first.recordsRemoved > 0);
      checkCleaned(model.filter((e) => e.key !== "k0"), plog, last.cleanedUpTo);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("a producer's last batch stays, empty, when compaction removes all its records", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 1024, compact: true });
    const plog = await PartitionLogClass.open(dir, config, {
      clock: new ManualClock(T0),
      name: "c-0",
    });
    try {
      const first = plog.append([batchOf([{ key: "a", value: "1" }], 0)], { leaderEpoch: 0 });
      for (let i = 0; i < 30; i++) {
        plog.append([batchOf([{ key: "a", value: `${i}${"z".repeat(100)}` }], 0)], {
          leaderEpoch: 0,
        });
      }
      await cleanLog(plog, options(plog, { producerLastOffsets: new Set([first.lastOffset]) }));
      const { records } = plog.read(first.baseOffset, 1 << 20);
      const h = readBatchHeader(records);
      assert.equal(h.baseOffset, first.baseOffset);
      assert.equal(h.recordCount, 0, "kept, empty");
    } finally {
      await plog.close();
    }
  });
});

Deno.test("the offset map holds its capacity of keys and reports itself full", () => {
  const map = new OffsetMap(16 * 100);
  assert.equal(map.capacity, 90);
  for (let i = 0; i < 90; i++) map.put(encoder.encode(`key-${i}`), i);
  assert.ok(map.full);
  assert.throws(() => map.put(encoder.encode("one more"), 100), RangeError);
  map.put(encoder.encode("key-3"), 200); // an existing key may move on
  assert.equal(map.get(encoder.encode("key-3")), 200);
  assert.equal(map.get(encoder.encode("key-4")), 4);
  assert.equal(map.get(encoder.encode("absent")), -1);
  assert.equal(map.latestOffset, 200);
});

/** A file system that fails (as a crash would stop it) at its `at`-th renaming or removal. */
function crashingFs(at: number): { fs: FileSystem; steps: () => number } {
  let steps = 0;
  const step = (what: string) => {
    if (++steps === at) throw new Error(`crash before ${what}`);
  };
  return {
    fs: {
      ...denoFs,
      rename: (from, to) => {
        step("rename");
        return denoFs.rename(from, to);
      },
      remove: (path, o) => {
        step("remove");
        return denoFs.remove(path, o);
      },
      removeSync: (path, o) => {
        step("remove");
        return denoFs.removeSync(path, o);
      },
    },
    steps: () => steps,
  };
}

Deno.test("a crash at any step of a cleaning's segment swap leaves the old segments or the new one", async () => {
  for (let at = 1;; at++) {
    let steps = 0;
    await withTempDir(async (dir) => {
      const config = testConfig({ segmentBytes: 2048, compact: true });
      const crash = crashingFs(at);
      const clock = new ManualClock(T0);
      const plog = await PartitionLogClass.open(dir, config, { clock, name: "c-0" });
      const model: Entry[] = [];
      for (let i = 0; i < 60; i++) {
        const e = { key: `k${i % 7}`, value: `v${i}${"w".repeat(80)}` };
        const r = plog.append([batchOf([e], i % 5)], { leaderEpoch: 0 });
        model.push({ offset: r.baseOffset, ...e });
      }
      await plog.close();
      const crashing = await PartitionLogClass.open(dir, config, {
        clock,
        name: "c-0",
        fs: crash.fs,
      });
      try {
        await cleanLog(crashing, options(crashing));
      } catch (err) {
        assert.match((err as Error).message, /crash before/);
      }
      steps = crash.steps();
      // The process is gone; a new one opens the directory as it is (the crashed one's
      // handles are closed only after the check).
      const reopened = await PartitionLogClass.open(dir, config, { clock, name: "c-0" });
      try {
        assert.equal(reopened.logEndOffset, 60);
        checkCleaned(model, reopened, 0);
        const names = [...Deno.readDirSync(dir)].map((e) => e.name);
        assert.ok(!names.some((n) => n.endsWith(".swap") || n.endsWith(".cleaned")), `${names}`);
      } finally {
        await crashing.close().catch(() => {});
        await reopened.close();
      }
    });
    if (steps < at) break; // the cleaning finished before reaching step `at`
  }
});

Deno.test("a tombstone beyond the cleaned range keeps its key deleted after its horizon (the map filled first)", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 8192, compact: true, deleteRetentionMs: 1000 });
    const plog = await PartitionLogClass.open(dir, config, {
      clock: new ManualClock(T0),
      name: "c-0",
    });
    try {
      const add = (key: string, value: string | null) =>
        plog.append([batchOf([{ key, value }], 0)], { leaderEpoch: 0 }).baseOffset;
      add("k", "old value");
      for (let i = 0; i < 40; i++) add(`a${i}`, "x");
      const tombstone = add("k", null);
      for (let i = 0; i < 200; i++) add(`filler${i % 3}`, "y".repeat(100)); // rolls segments
      // A map of 14 keys fills long before the tombstone: each cleaning ends before it.
      const small = { mapBytes: 16 * 16 };
      const first = await cleanLog(plog, options(plog, small));
      assert.ok(first.cleanedUpTo <= tombstone);
      const second = await cleanLog(plog, options(plog, { ...small, nowMs: T0 + 5000 }));
      assert.ok(second.cleanedUpTo <= tombstone, `${second.cleanedUpTo} <= ${tombstone}`);
      const k = contents(plog).entries.filter((e) => e.key === "k");
      assert.deepEqual(k.at(-1), { offset: tombstone, key: "k", value: null });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("a truncation during a cleaning makes it give up, changing nothing", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 2048, compact: true });
    const plog = await PartitionLogClass.open(dir, config, {
      clock: new ManualClock(T0),
      name: "c-0",
    });
    try {
      for (let i = 0; i < 80; i++) {
        plog.append([batchOf([{ key: `k${i % 5}`, value: `v${i}${"z".repeat(60)}` }], 0)], {
          leaderEpoch: 0,
        });
      }
      const before = contents(plog).entries;
      let truncated = false;
      const r = await cleanLog(
        plog,
        options(plog, {
          throttle: async () => {
            if (truncated) return;
            truncated = true;
            await plog.truncateTo(70); // a follower cut back by its new leader, say
          },
        }),
      );
      assert.equal(r.completed, false);
      assert.equal(plog.logEndOffset, 70);
      assert.deepEqual(contents(plog).entries, before.filter((e) => e.offset < 70));
      assert.ok(plog.cleanerCheckpoint <= 70);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("an aborted transaction's records are removed and never shadow a committed value; markers stay", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 1024, compact: true });
    const plog = await PartitionLogClass.open(dir, config, {
      clock: new ManualClock(T0),
      name: "c-0",
    });
    const record = (key: string, value: string) => ({
      key: encoder.encode(key),
      value: encoder.encode(value),
      timestampMs: T0,
    });
    const txn = (producerId: bigint, seq: number, key: string, value: string) =>
      encodeRecordBatch([record(key, value)], {
        producerId,
        producerEpoch: 0,
        baseSequence: seq,
        transactional: true,
      });
    const marker = (producerId: bigint, commit: boolean) =>
      encodeControlBatch({ producerId, producerEpoch: 0, coordinatorEpoch: 0, commit }, T0);
    try {
      const append = (b: Uint8Array) => plog.append([b], { leaderEpoch: 0 });
      append(encodeRecordBatch([record("k", "committed-v1")]));
      const abortedFirst = append(txn(5n, 0, "k", "aborted-v2")).baseOffset;
      append(txn(6n, 0, "j", "committed-by-txn"));
      append(txn(5n, 1, "other", "aborted-too"));
      const abortMarker = append(marker(5n, false)).baseOffset;
      append(marker(6n, true));
      for (let i = 0; i < 20; i++) {
        append(batchOf([{ key: `pad${i % 3}`, value: "p".repeat(100) }], 0));
      }
      const result = await cleanLog(
        plog,
        options(plog, {
          aborted: [{ producerId: 5n, firstOffset: abortedFirst, lastOffset: abortMarker }],
        }),
      );
      assert.ok(result.cleanedUpTo > abortMarker);
      const values: string[] = [];
      let markers = 0;
      let offset = plog.logStartOffset;
      while (offset < plog.logEndOffset) {
        const { records } = plog.read(offset, 1 << 20, { minOneMessage: true });
        let pos = 0;
        while (pos < records.length) {
          const h = readBatchHeader(records, pos);
          const batch = records.subarray(pos, pos + h.sizeInBytes);
          if ((h.attributes & 0x20) !== 0) markers++;
          else {
            for (const r of readBatchRecords(batch).records) values.push(decoder.decode(r.value!));
          }
          offset = h.baseOffset + h.lastOffsetDelta + 1;
          pos += h.sizeInBytes;
        }
      }
      assert.ok(values.includes("committed-v1"), "the committed value of k survives");
      assert.ok(values.includes("committed-by-txn"));
      assert.ok(!values.some((v) => v.startsWith("aborted")), values.join(","));
      assert.equal(markers, 2, "both markers are kept");
    } finally {
      await plog.close();
    }
  });
});
