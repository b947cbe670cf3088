import assert from "node:assert/strict";
import { KafkaStorageError, LogClosedError, PartitionLog } from "../../../lib/log/mod.ts";
import { denoFs, type FileHandle, type FileSystem } from "../../../lib/runtime/fs.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { appendBatches, openLog, segmentFiles, T0, testConfig, withTempDir } from "./_helpers.ts";

Deno.test("PartitionLog.waitDurable() resolves once the offset is fsynced", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    try {
      const [a] = appendBatches(plog, 1, 3, 100);
      // The write is in the page cache; its fsync is still running.
      assert.equal(plog.logEndOffset, 3);
      assert.equal(plog.durableEndOffset, 0);
      await plog.waitDurable(a!.lastOffset);
      assert.equal(plog.durableEndOffset, 3);
      assert.equal(plog.stats().syncs, 1);
      // Already durable: resolves at once, no new fsync.
      await plog.waitDurable(0);
      assert.equal(plog.stats().syncs, 1);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog group commit: one fsync covers the appends made while another ran", async (t) => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir);
    try {
      await t.step("200 appends in one turn need at most 2 fsyncs", async () => {
        const waits: Promise<void>[] = [];
        for (let i = 0; i < 200; i++) {
          const [a] = appendBatches(plog, 1, 2, 50, i);
          waits.push(plog.waitDurable(a!.lastOffset));
        }
        await Promise.all(waits);
        assert.equal(plog.durableEndOffset, 400);
        assert.ok(plog.stats().syncs <= 2, `${plog.stats().syncs} syncs`);
      });
      await t.step("pipelined appends arriving during fsyncs are coalesced", async () => {
        const before = plog.stats().syncs;
        const waits: Promise<void>[] = [];
        for (let round = 0; round < 20; round++) {
          for (let i = 0; i < 10; i++) {
            const [a] = appendBatches(plog, 1, 1, 50, 1000 + round * 10 + i);
            waits.push(plog.waitDurable(a!.lastOffset));
          }
          await new Promise((r) => setTimeout(r, 0));
        }
        await Promise.all(waits);
        const syncs = plog.stats().syncs - before;
        assert.ok(syncs >= 1 && syncs < 200, `${syncs} syncs for 200 appends`);
        assert.equal(plog.durableEndOffset, plog.logEndOffset);
      });
      await t.step("waiting for an offset not yet appended resolves when it is", async () => {
        const end = plog.logEndOffset;
        let resolved = false;
        const w = plog.waitDurable(end + 1).then(() => resolved = true);
        appendBatches(plog, 1, 1, 10, 5000);
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(resolved, false);
        appendBatches(plog, 1, 1, 10, 5001);
        await w;
        assert.equal(resolved, true);
      });
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog flush never: durable at once, no fsync per append", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, testConfig({ flush: { kind: "never" } }));
    try {
      appendBatches(plog, 50, 2, 100);
      assert.equal(plog.durableEndOffset, 100);
      await plog.waitDurable(99);
      assert.equal(plog.stats().syncs, 0);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog flush interval: fsync on the timer, waiters wait for it", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, testConfig({ flush: { kind: "interval", ms: 10 } }));
    try {
      appendBatches(plog, 20, 2, 100);
      assert.equal(plog.durableEndOffset, 0);
      assert.equal(plog.stats().syncs, 0);
      await plog.waitDurable(39);
      assert.equal(plog.durableEndOffset, 40);
      assert.ok(plog.stats().syncs >= 1);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.updateConfig() switching flush policy releases waiters", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, testConfig({ flush: { kind: "interval", ms: 60_000 } }));
    try {
      appendBatches(plog, 3, 1, 10);
      const w = plog.waitDurable(2);
      plog.updateConfig(testConfig({ flush: { kind: "always" } }));
      await w;
      assert.equal(plog.durableEndOffset, 3);
      plog.updateConfig(testConfig({ flush: { kind: "never" } }));
      appendBatches(plog, 1, 1, 10, 3);
      assert.equal(plog.durableEndOffset, 4);
    } finally {
      await plog.close();
    }
  });
});

Deno.test("PartitionLog.close() fsyncs pending appends and rejects waiters beyond the end", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, testConfig({ flush: { kind: "interval", ms: 60_000 } }));
    appendBatches(plog, 5, 2, 100);
    const durable = plog.waitDurable(9);
    const beyond = plog.waitDurable(10);
    const beyondRejected = assert.rejects(beyond, LogClosedError);
    await plog.close();
    await durable;
    await beyondRejected;
    assert.equal(plog.durableEndOffset, 10);
  });
});

Deno.test("PartitionLog durability across segment rolls", async () => {
  await withTempDir(async (dir) => {
    const plog = await openLog(dir, testConfig({ segmentBytes: 1024 }));
    try {
      const waits: Promise<void>[] = [];
      for (let i = 0; i < 50; i++) {
        const [a] = appendBatches(plog, 1, 2, 100, i);
        waits.push(plog.waitDurable(a!.lastOffset));
      }
      await Promise.all(waits);
      assert.ok(plog.segmentCount > 10);
      assert.equal(plog.durableEndOffset, 100);
    } finally {
      await plog.close();
    }
    // Every segment but the active one is recorded as fully fsynced.
    const active = Number(segmentFiles(dir).at(-1)!.slice(0, 20));
    assert.ok(active > 0);
    assert.equal(Deno.readTextFileSync(`${dir}/recovery-point`), `0\n${active}\n`);
  });
});

/**
 * Deno's file system, except that the handles it opens fail `syncData` while
 * `failSyncData()` says so (an fsync returning EIO).
 */
function failingSyncDataFs(failSyncData: () => boolean): FileSystem {
  const wrap = (file: FileHandle): FileHandle => ({
    read: (p) => file.read(p),
    readSync: (p) => file.readSync(p),
    write: (p) => file.write(p),
    writeSync: (p) => file.writeSync(p),
    seek: (offset, whence) => file.seek(offset, whence),
    seekSync: (offset, whence) => file.seekSync(offset, whence),
    truncate: (len) => file.truncate(len),
    truncateSync: (len) => file.truncateSync(len),
    stat: () => file.stat(),
    statSync: () => file.statSync(),
    syncData: () => failSyncData() ? Promise.reject(new Error("EIO: injected")) : file.syncData(),
    sync: () => file.sync(),
    lock: (exclusive) => file.lock(exclusive),
    close: () => file.close(),
    [Symbol.dispose]: () => file[Symbol.dispose](),
  });
  return {
    ...denoFs,
    open: async (path, options) => wrap(await denoFs.open(path, options)),
    openSync: (path, options) => wrap(denoFs.openSync(path, options)),
  };
}

Deno.test("PartitionLog fsync failure is fatal: waiters reject, appends throw", async () => {
  await withTempDir(async (dir) => {
    let armed = false;
    let calls = 0;
    // Only the first fdatasync after arming fails, as a disk that errors once would.
    const fs = failingSyncDataFs(() => armed && ++calls === 1);
    const plog = await PartitionLog.open(dir, testConfig(), {
      clock: new ManualClock(T0),
      fs,
      name: "test-0",
    });
    armed = true;
    try {
      appendBatches(plog, 1, 1, 10);
      await assert.rejects(plog.waitDurable(0), KafkaStorageError);
      assert.equal(plog.durableEndOffset, 0);
      assert.throws(() => appendBatches(plog, 1, 1, 10, 1), KafkaStorageError);
      await assert.rejects(plog.waitDurable(0), KafkaStorageError);
      // Reads still work: the data is in the page cache.
      assert.equal(plog.read(0, 1000).records.length > 0, true);
    } finally {
      armed = false;
      await assert.rejects(plog.close(), KafkaStorageError);
    }
  });
});
