/**
 * PartitionProducerState on a real PartitionLog: rebuilding from the log, snapshots on
 * close and in the background, snapshots that must be ignored (beyond the log end, not
 * matching the log, corrupt), the snapshot files kept, and the single snapshot file of
 * older data dirs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { PartitionLog } from "../../../lib/log/mod.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  PartitionProducerState,
  PRODUCER_STATE_FILE,
  ProducerStateError,
  producerStateSnapshotFile,
} from "../../../lib/producer/mod.ts";
import { ErrorCode, validateBatch } from "../../../lib/protocol/mod.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { buildBatch } from "../log/_batches.ts";
import { openLog, T0, testConfig, withTempDir } from "../log/_helpers.ts";

const PID = 1000n;

function idemBatch(seq: number, count: number, options: { pid?: bigint; epoch?: number } = {}) {
  return buildBatch({
    records: Array.from(
      { length: count },
      (_, i) => ({ key: `k${seq + i}`, value: `v${seq + i}` }),
    ),
    producerId: options.pid ?? PID,
    producerEpoch: options.epoch ?? 0,
    baseSequence: seq,
  });
}

/** Appends as ReplicaManager.appendAsLeader does: check, append, record. */
function append(plog: PartitionLog, pps: PartitionProducerState, batch: Uint8Array) {
  const h = validateBatch(batch);
  const dup = pps.check([h]);
  if (dup !== null) return { duplicate: true, baseOffset: dup.firstOffset };
  const r = plog.append([batch], { leaderEpoch: 0 });
  pps.onAppended([h], [batch], r.baseOffset, { logAppendTimeMs: -1, bytes: batch.length });
  return { duplicate: false, baseOffset: r.baseOffset };
}

/** loadInfo without the byte count (which depends on the batch encoding). */
function scanInfo(pps: PartitionProducerState) {
  const { scannedBytes: _, ...rest } = pps.loadInfo;
  return rest;
}

/** Resolves once `path` exists (the snapshot's rename is its last step). */
async function waitForFile(path: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await Deno.stat(path).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`${path} was not written`);
}

/** The snapshot files in `dir`, oldest first. */
function snapshotFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => /^producer-state-\d{20}\.json$/.test(n)).sort();
}

/** The path of the newest snapshot file in `dir`. */
function latestSnapshot(dir: string): string {
  const name = snapshotFiles(dir).at(-1);
  assert.ok(name !== undefined, `no snapshot in ${dir}`);
  return join(dir, name);
}

/** Replaces every snapshot in `dir` with one file for `offset` holding `text`. */
async function onlySnapshot(dir: string, offset: number, text: string): Promise<string> {
  for (const name of snapshotFiles(dir)) await Deno.remove(join(dir, name));
  const path = join(dir, producerStateSnapshotFile(offset));
  await Deno.writeTextFile(path, text);
  return path;
}

function codeOf(fn: () => unknown): number | null {
  try {
    fn();
    return null;
  } catch (err) {
    assert.ok(err instanceof ProducerStateError);
    return err.code;
  }
}

Deno.test("PartitionProducerState.load() rebuilds producer state from the log", async (t) => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    let plog = await openLog(dir, testConfig({ segmentBytes: 400 }), clock);
    let pps = await PartitionProducerState.load(plog, { clock });
    await t.step("an empty log gives an empty state", () => {
      assert.equal(pps.state.size, 0);
      assert.deepEqual(scanInfo(pps), { snapshotOffset: null, scannedFrom: 0, scannedBatches: 0 });
    });
    // Two producers and plain batches, across several small segments.
    for (let seq = 0; seq < 30; seq += 3) {
      append(plog, pps, idemBatch(seq, 3));
      append(plog, pps, buildBatch({ records: [{ value: "plain" }] }));
      append(plog, pps, idemBatch(seq / 3, 1, { pid: 2000n, epoch: 4 }));
    }
    assert.ok(plog.segmentCount > 3, `only ${plog.segmentCount} segments`);
    const before = pps.state.entries();
    const end = plog.logEndOffset;
    // Crash-like reopen: no snapshot written.
    await plog.close();
    plog = await openLog(dir, testConfig({ segmentBytes: 400 }), clock);
    pps = await PartitionProducerState.load(plog, { clock });

    await t.step("the rebuilt state equals the live one", () => {
      assert.deepEqual(scanInfo(pps), { snapshotOffset: null, scannedFrom: 0, scannedBatches: 30 });
      assert.deepEqual(pps.state.entries(), before);
    });
    await t.step("a retry of the last batch is still a duplicate with its original offset", () => {
      const r = append(plog, pps, idemBatch(27, 3));
      assert.deepEqual(r, { duplicate: true, baseOffset: end - 5 });
      assert.equal(plog.logEndOffset, end);
    });
    await t.step("the next sequence continues; a gap and an old epoch are refused", () => {
      assert.equal(
        codeOf(() => pps.check([validateBatch(idemBatch(31, 1))])),
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
      );
      assert.equal(
        codeOf(() => pps.check([validateBatch(idemBatch(10, 1, { pid: 2000n, epoch: 3 }))])),
        ErrorCode.INVALID_PRODUCER_EPOCH,
      );
      assert.deepEqual(append(plog, pps, idemBatch(30, 1)), { duplicate: false, baseOffset: end });
    });
    await plog.close();
  });
});

Deno.test("PartitionProducerState snapshots bound the start-up scan", async (t) => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    let plog = await openLog(dir, testConfig(), clock);
    let pps = await PartitionProducerState.load(plog, { clock });
    for (let seq = 0; seq < 20; seq += 2) append(plog, pps, idemBatch(seq, 2));
    await pps.close();
    await plog.close();

    await t.step(
      "close() writes a snapshot at the log end; load() uses it and scans nothing",
      async () => {
        assert.deepEqual(snapshotFiles(dir), [producerStateSnapshotFile(20)]);
        const snap = decodeSnapshot(await Deno.readTextFile(latestSnapshot(dir)));
        assert.equal(snap.offset, 20);
        assert.deepEqual(snap.lastBatch?.baseOffset, 18);
        plog = await openLog(dir, testConfig(), clock);
        pps = await PartitionProducerState.load(plog, { clock });
        assert.deepEqual(scanInfo(pps), { snapshotOffset: 20, scannedFrom: 20, scannedBatches: 0 });
        assert.equal(pps.state.entry(PID)?.batches.at(-1)?.lastSeq, 19);
      },
    );

    await t.step("batches after the snapshot are replayed on top of it", async () => {
      append(plog, pps, idemBatch(20, 2));
      append(plog, pps, idemBatch(22, 2));
      await plog.close(); // no producer-state close: as after a crash
      plog = await openLog(dir, testConfig(), clock);
      pps = await PartitionProducerState.load(plog, { clock });
      assert.deepEqual(scanInfo(pps), { snapshotOffset: 20, scannedFrom: 20, scannedBatches: 2 });
      assert.equal(append(plog, pps, idemBatch(22, 2)).duplicate, true);
      assert.equal(append(plog, pps, idemBatch(18, 2)).duplicate, true);
      assert.equal(append(plog, pps, idemBatch(24, 1)).duplicate, false);
    });

    await t.step("a snapshot beyond the log end is ignored and deleted", async () => {
      await pps.close();
      await plog.close();
      const snap = decodeSnapshot(await Deno.readTextFile(latestSnapshot(dir)));
      const path = await onlySnapshot(dir, 1000, encodeSnapshot({ ...snap, offset: 1000 }));
      plog = await openLog(dir, testConfig(), clock);
      pps = await PartitionProducerState.load(plog, { clock });
      assert.deepEqual(scanInfo(pps), { snapshotOffset: null, scannedFrom: 0, scannedBatches: 13 });
      assert.equal(pps.state.entry(PID)?.batches.at(-1)?.lastSeq, 24);
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    });

    await t.step("a snapshot whose last batch is not the log's is ignored", async () => {
      await pps.close();
      await plog.close();
      const snap = decodeSnapshot(await Deno.readTextFile(latestSnapshot(dir)));
      assert.ok(snap.lastBatch);
      await onlySnapshot(
        dir,
        snap.offset,
        encodeSnapshot({ ...snap, entries: [], lastBatch: { ...snap.lastBatch, crc: 1 } }),
      );
      plog = await openLog(dir, testConfig(), clock);
      pps = await PartitionProducerState.load(plog, { clock });
      assert.equal(pps.loadInfo.snapshotOffset, null);
      assert.equal(pps.state.entry(PID)?.batches.at(-1)?.lastSeq, 24);
    });

    await t.step("a corrupt snapshot is ignored", async () => {
      await pps.close();
      await plog.close();
      await onlySnapshot(dir, plog.logEndOffset, '{"version":1,"offset":');
      plog = await openLog(dir, testConfig(), clock);
      pps = await PartitionProducerState.load(plog, { clock });
      assert.equal(pps.loadInfo.snapshotOffset, null);
      assert.equal(pps.state.entry(PID)?.batches.at(-1)?.lastSeq, 24);
    });

    await t.step(
      "a snapshot at or below the log start is used without a batch to compare",
      async () => {
        await pps.close();
        await plog.advanceLogStartOffset(plog.logEndOffset);
        await plog.close();
        plog = await openLog(dir, testConfig(), clock);
        pps = await PartitionProducerState.load(plog, { clock });
        assert.equal(pps.loadInfo.snapshotOffset, plog.logEndOffset);
        // Producers outlive their batches (KIP-360): the cache still answers a retry.
        assert.equal(append(plog, pps, idemBatch(24, 1)).duplicate, true);
      },
    );
    await pps.close();
    await plog.close();
  });
});

Deno.test("PartitionProducerState writes a snapshot in the background every snapshotIntervalBytes", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    const plog = await openLog(dir, testConfig(), clock);
    const pps = await PartitionProducerState.load(plog, { clock, snapshotIntervalBytes: 500 });
    let seq = 0;
    while (plog.sizeInBytes < 500) append(plog, pps, idemBatch(seq++, 1));
    const end = plog.logEndOffset;
    const path = join(dir, producerStateSnapshotFile(end));
    // Nobody calls snapshot(): the append that crossed the threshold started the write.
    await waitForFile(path);
    const snap = decodeSnapshot(await Deno.readTextFile(path));
    assert.equal(snap.offset, end);
    await pps.close();
    await plog.close();
  });
});

Deno.test("PartitionProducerState.load() snapshots at once after a long scan", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    let plog = await openLog(dir, testConfig(), clock);
    let pps = await PartitionProducerState.load(plog, { clock });
    for (let seq = 0; seq < 10; seq++) append(plog, pps, idemBatch(seq, 1));
    await plog.close(); // crash: no snapshot
    plog = await openLog(dir, testConfig(), clock);
    pps = await PartitionProducerState.load(plog, { clock, snapshotIntervalBytes: 100 });
    assert.equal(pps.loadInfo.scannedBatches, 10);
    assert.ok(pps.loadInfo.scannedBytes > 100);
    // Nobody calls snapshot(): load() started the write.
    await waitForFile(join(dir, producerStateSnapshotFile(10)));
    await plog.close(); // crash again
    plog = await openLog(dir, testConfig(), clock);
    pps = await PartitionProducerState.load(plog, { clock });
    assert.deepEqual(scanInfo(pps), { snapshotOffset: 10, scannedFrom: 10, scannedBatches: 0 });
    await pps.close();
    await plog.close();
  });
});

Deno.test("PartitionProducerState.close() skips the write when the snapshot covers the log end", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    let plog = await openLog(dir, testConfig(), clock);
    let pps = await PartitionProducerState.load(plog, { clock });
    append(plog, pps, idemBatch(0, 1));
    await pps.close();
    await plog.close();
    const path = join(dir, producerStateSnapshotFile(1));
    const written = (await Deno.stat(path)).mtime;
    await new Promise((r) => setTimeout(r, 20));
    plog = await openLog(dir, testConfig(), clock);
    pps = await PartitionProducerState.load(plog, { clock });
    await pps.close();
    assert.deepEqual((await Deno.stat(path)).mtime, written);
    append(plog, pps, idemBatch(1, 1)); // after close(): only to change the log end
    pps = await PartitionProducerState.load(plog, { clock });
    await pps.close();
    assert.equal(decodeSnapshot(await Deno.readTextFile(latestSnapshot(dir))).offset, 2);
    await plog.close();
  });
});

Deno.test("PartitionProducerState expires idle producers (producer.id.expiration.ms)", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    const plog = await openLog(dir, testConfig(), clock);
    const pps = await PartitionProducerState.load(plog, {
      clock,
      expirationMs: 10_000,
      expirationCheckIntervalMs: 1_000,
    });
    append(plog, pps, idemBatch(0, 1));
    clock.advance(5_000);
    append(plog, pps, idemBatch(0, 1, { pid: 2n }));
    clock.advance(6_000);
    append(plog, pps, idemBatch(1, 1, { pid: 2n }));
    assert.equal(pps.state.entry(PID), undefined);
    assert.ok(pps.state.entry(2n));
    await pps.close();
    await plog.close();
  });
});

Deno.test("PartitionProducerState keeps the 3 newest snapshots", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    const plog = await openLog(dir, testConfig(), clock);
    const pps = await PartitionProducerState.load(plog, { clock });
    for (let seq = 0; seq < 5; seq++) {
      append(plog, pps, idemBatch(seq, 1));
      await pps.snapshot();
    }
    assert.deepEqual(snapshotFiles(dir), [3, 4, 5].map(producerStateSnapshotFile));
    await pps.close();
    await plog.close();
  });
});

Deno.test("PartitionProducerState reads the single producer-state.json of older data dirs", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    let plog = await openLog(dir, testConfig(), clock);
    let pps = await PartitionProducerState.load(plog, { clock });
    for (let seq = 0; seq < 10; seq += 2) append(plog, pps, idemBatch(seq, 2));
    await pps.close();
    await plog.close();
    // The file as the previous version wrote it: no logIncarnation, one fixed name.
    const { logIncarnation: _, ...old } = JSON.parse(await Deno.readTextFile(latestSnapshot(dir)));
    await Deno.remove(latestSnapshot(dir));
    const legacy = join(dir, PRODUCER_STATE_FILE);
    await Deno.writeTextFile(legacy, JSON.stringify(old));

    plog = await openLog(dir, testConfig(), clock);
    pps = await PartitionProducerState.load(plog, { clock });
    assert.deepEqual(scanInfo(pps), { snapshotOffset: 10, scannedFrom: 10, scannedBatches: 0 });
    assert.equal(append(plog, pps, idemBatch(8, 2)).duplicate, true);
    append(plog, pps, idemBatch(10, 2));
    await pps.close();
    // Superseded by the new snapshot.
    await assert.rejects(Deno.stat(legacy), Deno.errors.NotFound);
    assert.deepEqual(snapshotFiles(dir), [producerStateSnapshotFile(12)]);
    await plog.close();
  });
});
