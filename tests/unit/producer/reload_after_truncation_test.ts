/**
 * Rebuilding the producer state after the log was truncated (a follower removing a
 * divergent tail, or restarting its log at the leader's log start): it starts from the
 * newest snapshot still at or below the new log end (Kafka's truncateAndReload), replays
 * the rest in chunks that yield to the event loop, and never trusts a snapshot taken
 * before a `truncateFullyAndStartAt` (also after a crash in the middle of one).
 */
import assert from "node:assert/strict";
import type { PartitionLog } from "../../../lib/log/mod.ts";
import {
  PartitionProducerState,
  type PartitionProducerStateOptions,
} from "../../../lib/producer/mod.ts";
import { validateBatch } from "../../../lib/protocol/mod.ts";
import { systemTimers, type Timers } from "../../../lib/runtime/mod.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { buildBatch } from "../log/_batches.ts";
import { openLog, T0, testConfig, withTempDir } from "../log/_helpers.ts";

const PID = 1000n;

function idemBatch(seq: number, count: number, pid = PID) {
  return buildBatch({
    records: Array.from({ length: count }, (_, i) => ({ value: `v${seq + i}` })),
    producerId: pid,
    producerEpoch: 0,
    baseSequence: seq,
  });
}

/** Appends as ReplicaManager.appendAsLeader does: check, append, record. */
function append(plog: PartitionLog, pps: PartitionProducerState, batch: Uint8Array): void {
  const h = validateBatch(batch);
  assert.equal(pps.check([h]), null);
  const r = plog.append([batch], { leaderEpoch: 0 });
  pps.onAppended([h], [batch], r.baseOffset, { logAppendTimeMs: -1, bytes: batch.length });
}

/** What Partition does after a truncation. */
function reload(pps: PartitionProducerState): Promise<PartitionProducerState> {
  return pps.reloadAfterTruncation();
}

/** loadInfo without the byte count (which depends on the batch encoding). */
function scanInfo(pps: PartitionProducerState) {
  const { scannedBytes: _, ...rest } = pps.loadInfo;
  return rest;
}

/** The state a full replay of the log gives: what any reload must equal. */
async function fromScratch(plog: PartitionLog, dir: string) {
  const copy = `${dir}-copy`;
  await Deno.mkdir(copy, { recursive: true });
  for await (const e of Deno.readDir(dir)) {
    if (/\.(log|index|timeindex)$|^log-start-offset$/.test(e.name)) {
      await Deno.copyFile(`${dir}/${e.name}`, `${copy}/${e.name}`);
    }
  }
  const other = await openLog(copy, testConfig(), new ManualClock(T0));
  try {
    const pps = await PartitionProducerState.load(other, { clock: new ManualClock(T0) });
    assert.equal(pps.loadInfo.snapshotOffset, null);
    return pps.state.entries();
  } finally {
    await other.close();
    await Deno.remove(copy, { recursive: true });
    assert.equal(plog.logEndOffset, other.logEndOffset);
  }
}

Deno.test("reloadAfterTruncation() starts from the newest snapshot at or below the new log end", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    const plog = await openLog(dir, testConfig(), clock);
    try {
      let pps = await PartitionProducerState.load(plog, { clock });
      for (let seq = 0; seq < 20; seq += 2) append(plog, pps, idemBatch(seq, 2));
      await pps.snapshot(); // at 20
      for (let seq = 20; seq < 40; seq += 2) append(plog, pps, idemBatch(seq, 2));
      await pps.snapshot(); // at 40
      for (let seq = 40; seq < 50; seq += 2) append(plog, pps, idemBatch(seq, 2));

      await plog.truncateTo(30);
      pps = await reload(pps);
      assert.deepEqual(scanInfo(pps), { snapshotOffset: 20, scannedFrom: 20, scannedBatches: 5 });
      assert.deepEqual(pps.state.entries(), await fromScratch(plog, dir));
      assert.equal(pps.state.entry(PID)?.batches.at(-1)?.lastSeq, 29);

      // The snapshot at 40 described offsets that are gone: never used again.
      for (let seq = 30; seq < 50; seq += 2) append(plog, pps, idemBatch(seq, 2, 7n));
      pps = await PartitionProducerState.load(plog, { clock });
      assert.notEqual(pps.loadInfo.snapshotOffset, 40);
      assert.deepEqual(pps.state.entries(), await fromScratch(plog, dir));
      await pps.close();
    } finally {
      await plog.close();
    }
  });
});

Deno.test("reloadAfterTruncation() replays in chunks that yield to the event loop", async () => {
  await withTempDir(async (dir) => {
    const clock = new ManualClock(T0);
    const plog = await openLog(dir, testConfig(), clock);
    let yields = 0;
    const timers: Timers = {
      ...systemTimers,
      setImmediate: (fn) => {
        yields++;
        systemTimers.setImmediate(fn);
      },
    };
    const options: PartitionProducerStateOptions = { clock, timers, replayChunkBatches: 100 };
    try {
      let pps = await PartitionProducerState.load(plog, options);
      for (let i = 0; i < 2000; i++) {
        append(plog, pps, idemBatch(Math.floor(i / 7), 1, BigInt(i % 7)));
      }
      await plog.truncateTo(1500);
      yields = 0;
      let otherWork = 0;
      const tick = systemTimers.setInterval(() => otherWork++, 0);
      try {
        pps = await reload(pps);
      } finally {
        systemTimers.clearInterval(tick);
      }
      assert.equal(pps.loadInfo.scannedBatches, 1500);
      assert.ok(yields >= 14, `only ${yields} yields for 1500 batches in chunks of 100`);
      assert.ok(otherWork > 0, "other work ran during the replay");
      assert.deepEqual(pps.state.entries(), await fromScratch(plog, dir));
      await pps.close();
    } finally {
      await plog.close();
    }
  });
});

Deno.test("after truncateFullyAndStartAt() no older snapshot is ever loaded", async (t) => {
  for (const restartAt of [100, 20]) {
    await t.step(`restart at ${restartAt}, old log end 20`, async (t) => {
      await withTempDir(async (dir) => {
        const clock = new ManualClock(T0);
        let plog = await openLog(dir, testConfig(), clock);
        try {
          let pps = await PartitionProducerState.load(plog, { clock });
          for (let seq = 0; seq < 20; seq += 2) append(plog, pps, idemBatch(seq, 2));
          await pps.snapshot(); // at 20, the old log's producer 1000

          await t.step("reload right after the restart", async () => {
            await plog.truncateFullyAndStartAt(restartAt);
            pps = await reload(pps);
            assert.equal(pps.state.size, 0);
            assert.equal(pps.loadInfo.snapshotOffset, null);
            assert.equal(pps.check([validateBatch(idemBatch(50, 1))]), null); // unknown again
          });
          await t.step(
            "a crash before the reload: the next start ignores the old snapshot",
            async () => {
              await pps.snapshot(); // the restarted log's (empty) state
              for (let seq = 0; seq < 4; seq++) append(plog, pps, idemBatch(seq, 1, 9n));
              await pps.snapshot();
              await plog.truncateFullyAndStartAt(restartAt + 1000);
              await plog.close(); // crash: the producer state never hears of it
              plog = await openLog(dir, testConfig(), clock);
              pps = await PartitionProducerState.load(plog, { clock });
              assert.equal(pps.state.size, 0);
              assert.equal(pps.loadInfo.snapshotOffset, null);
            },
          );
          await pps.close();
        } finally {
          await plog.close();
        }
      });
    });
  }
});
