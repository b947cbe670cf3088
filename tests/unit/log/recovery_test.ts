import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { readBatchHeader } from "../../../lib/protocol/record_batch.ts";
import {
  appendBatches,
  type Appended,
  concat,
  openLog,
  readAll,
  segmentFiles,
  T0,
  testConfig,
  withTempDir,
} from "./_helpers.ts";

const SEG0 = "00000000000000000000";

/** Writes `n` batches of 3 records (offsets 3b..3b+2), closes, returns them. */
async function writeLog(dir: string, n: number, config = testConfig()): Promise<Appended[]> {
  const plog = await openLog(dir, config);
  const appended = appendBatches(plog, n, 3, 80);
  await plog.close();
  return appended;
}

/** Byte position of batch `b` in a single-segment log. */
function positionOf(appended: Appended[], b: number): number {
  let p = 0;
  for (let i = 0; i < b; i++) p += appended[i]!.batch.length;
  return p;
}

function flipBit(path: string, position: number): void {
  const bytes = Deno.readFileSync(path);
  bytes[position]! ^= 0x10;
  Deno.writeFileSync(path, bytes);
}

/** Reopens, checks that exactly `keep` batches survive and that appends continue after them. */
async function expectKept(dir: string, appended: Appended[], keep: number, config = testConfig()) {
  const plog = await openLog(dir, config);
  try {
    const expectedEnd = keep === 0 ? 0 : appended[keep - 1]!.lastOffset + 1;
    assert.equal(plog.logEndOffset, expectedEnd);
    assert.equal(plog.durableEndOffset, expectedEnd);
    assert.deepEqual(readAll(plog), concat(appended.slice(0, keep).map((a) => a.batch)));
    const [next] = appendBatches(plog, 1, 2, 10, 999);
    assert.equal(next!.baseOffset, expectedEnd);
    assert.deepEqual(plog.read(expectedEnd, 1000).records, next!.batch);
  } finally {
    await plog.close();
  }
}

Deno.test("PartitionLog.open() recovery: file cut mid-batch drops only the torn batch", async (t) => {
  for (const cut of [1, 30, 61, 100]) {
    await t.step(`${cut} bytes missing from the last batch`, async () => {
      await withTempDir(async (dir) => {
        const appended = await writeLog(dir, 10);
        const path = `${dir}/${SEG0}.log`;
        const size = Deno.statSync(path).size;
        Deno.truncateSync(path, size - Math.min(cut, appended[9]!.batch.length - 1));
        await expectKept(dir, appended, 9);
      });
    });
  }
  await t.step("cut inside the header of the last batch", async () => {
    await withTempDir(async (dir) => {
      const appended = await writeLog(dir, 10);
      Deno.truncateSync(`${dir}/${SEG0}.log`, positionOf(appended, 9) + 20);
      await expectKept(dir, appended, 9);
    });
  });
});

Deno.test("PartitionLog.open() recovery: a bit flipped in the last batch drops it", async () => {
  await withTempDir(async (dir) => {
    const appended = await writeLog(dir, 10);
    flipBit(`${dir}/${SEG0}.log`, positionOf(appended, 9) + 70);
    await expectKept(dir, appended, 9);
  });
});

Deno.test("PartitionLog.open() recovery: a bit flipped in a middle batch truncates exactly there", async (t) => {
  await t.step("in the records (CRC mismatch)", async () => {
    await withTempDir(async (dir) => {
      const appended = await writeLog(dir, 10);
      flipBit(`${dir}/${SEG0}.log`, positionOf(appended, 4) + 100);
      await expectKept(dir, appended, 4);
    });
  });
  await t.step("in the base offset (outside the CRC)", async () => {
    await withTempDir(async (dir) => {
      const appended = await writeLog(dir, 10);
      flipBit(`${dir}/${SEG0}.log`, positionOf(appended, 6) + 7);
      await expectKept(dir, appended, 6);
    });
  });
  await t.step("in the batch length", async () => {
    await withTempDir(async (dir) => {
      const appended = await writeLog(dir, 10);
      flipBit(`${dir}/${SEG0}.log`, positionOf(appended, 2) + 10);
      await expectKept(dir, appended, 2);
    });
  });
  await t.step("in the first batch: the log restarts empty", async () => {
    await withTempDir(async (dir) => {
      const appended = await writeLog(dir, 10);
      flipBit(`${dir}/${SEG0}.log`, 40);
      await expectKept(dir, appended, 0);
    });
  });
});

Deno.test("PartitionLog.open() recovery: trailing zeros or garbage after the last batch are cut", async (t) => {
  const tails: [string, Uint8Array][] = [
    ["4 KiB of zeros", new Uint8Array(4096)],
    ["a few zero bytes", new Uint8Array(7)],
    ["random garbage", crypto.getRandomValues(new Uint8Array(3000))],
  ];
  for (const [name, tail] of tails) {
    await t.step(name, async () => {
      await withTempDir(async (dir) => {
        const appended = await writeLog(dir, 10);
        const path = `${dir}/${SEG0}.log`;
        const f = Deno.openSync(path, { append: true });
        f.writeSync(tail);
        f.close();
        await expectKept(dir, appended, 10);
      });
    });
  }
});

Deno.test("PartitionLog.open() recovery: later segments go when an earlier one is damaged", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 1200 });
    const appended = await writeLog(dir, 30, config);
    const files = segmentFiles(dir);
    assert.ok(files.length >= 5);
    // An unclean shutdown lost the recovery point: every segment is scanned.
    Deno.removeSync(`${dir}/recovery-point`);
    const victim = files[2]!;
    const base = Number(victim.slice(0, 20));
    const b = appended.findIndex((a) => a.baseOffset === base);
    flipBit(`${dir}/${victim}`, appended[b]!.batch.length + 90); // second batch of segment 2
    await expectKept(dir, appended, b + 1, config);
    assert.deepEqual(segmentFiles(dir).slice(0, 3), files.slice(0, 3));
    assert.equal(segmentFiles(dir).length, 3);
  });
});

Deno.test("PartitionLog.open() recovery: missing or garbage index files are rebuilt", async (t) => {
  const config = testConfig({ segmentBytes: 2000, indexIntervalBytes: 300 });
  const damages: [string, (dir: string, base: string) => void][] = [
    ["missing .index", (dir, base) => Deno.removeSync(`${dir}/${base}.index`)],
    ["missing .timeindex", (dir, base) => Deno.removeSync(`${dir}/${base}.timeindex`)],
    ["garbage .index", (dir, base) => {
      Deno.writeFileSync(`${dir}/${base}.index`, crypto.getRandomValues(new Uint8Array(40)));
    }],
    ["torn .index", (dir, base) => {
      const bytes = Deno.readFileSync(`${dir}/${base}.index`);
      Deno.writeFileSync(`${dir}/${base}.index`, bytes.subarray(0, bytes.length - 3));
    }],
    ["index pointing at the wrong batch", (dir, base) => {
      const bytes = Deno.readFileSync(`${dir}/${base}.index`);
      new DataView(bytes.buffer).setUint32(bytes.length - 8, 1);
      Deno.writeFileSync(`${dir}/${base}.index`, bytes);
    }],
    ["zeroed .timeindex", (dir, base) => {
      const size = Deno.statSync(`${dir}/${base}.timeindex`).size;
      Deno.writeFileSync(`${dir}/${base}.timeindex`, new Uint8Array(size));
    }],
  ];
  for (const [name, damage] of damages) {
    await t.step(name, async () => {
      await withTempDir(async (dir) => {
        const appended = await writeLog(dir, 40, config);
        const files = segmentFiles(dir);
        assert.ok(files.length >= 4);
        const base = files[1]!.slice(0, 20);
        const goodIndex = Deno.readFileSync(`${dir}/${base}.index`);
        const goodTime = Deno.readFileSync(`${dir}/${base}.timeindex`);
        damage(dir, base);
        const plog = await openLog(dir, config);
        try {
          assert.equal(plog.logEndOffset, 120);
          assert.deepEqual(readAll(plog), concat(appended.map((a) => a.batch)));
          for (const a of appended) {
            assert.deepEqual(
              plog.read(a.baseOffset + 1, 1, { minOneMessage: true }).records,
              a.batch,
            );
            assert.equal(
              plog.offsetForTimestamp(T0 + 1000 * (a.baseOffset / 3) + 2)?.offset,
              a.baseOffset + 2,
            );
          }
        } finally {
          await plog.close();
        }
        assert.deepEqual(Deno.readFileSync(`${dir}/${base}.index`), goodIndex);
        assert.deepEqual(Deno.readFileSync(`${dir}/${base}.timeindex`), goodTime);
      });
    });
  }
});

Deno.test("PartitionLog.open() after a crash keeps every batch that was written", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 1500 });
    const plog = await openLog(dir, config);
    const crashed = `${dir}-crash`;
    try {
      const appended = appendBatches(plog, 25, 3, 80);
      await plog.waitDurable(plog.logEndOffset - 1);
      // A copy of the files taken while the log is open, as a kill -9 leaves them.
      Deno.mkdirSync(crashed);
      for (const e of Deno.readDirSync(dir)) {
        Deno.copyFileSync(`${dir}/${e.name}`, `${crashed}/${e.name}`);
      }
      const reopened = await openLog(crashed, config);
      try {
        assert.equal(reopened.logEndOffset, 75);
        assert.deepEqual(readAll(reopened), concat(appended.map((a) => a.batch)));
      } finally {
        await reopened.close();
      }
    } finally {
      await plog.close();
      Deno.removeSync(crashed, { recursive: true });
    }
  });
});

Deno.test("PartitionLog.open() after a clean close keeps everything, headers intact", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 3000, indexIntervalBytes: 500 });
    const appended = await writeLog(dir, 50, config);
    for (let round = 0; round < 2; round++) {
      const plog = await openLog(dir, config);
      try {
        assert.equal(plog.logStartOffset, 0);
        assert.equal(plog.logEndOffset, 150);
        assert.equal(plog.durableEndOffset, 150);
        assert.deepEqual(readAll(plog), concat(appended.map((a) => a.batch)));
        assert.equal(readBatchHeader(plog.read(149, 1000).records).baseOffset, 147);
        assert.deepEqual(plog.maxTimestamp(), { offset: 149, timestamp: T0 + 49_002 });
      } finally {
        await plog.close();
      }
    }
  });
});

Deno.test("PartitionLog.open() recovery logs one warn line saying what was truncated", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["tidelog", "log"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    await withTempDir(async (dir) => {
      const appended = await writeLog(dir, 10);
      flipBit(`${dir}/${SEG0}.log`, positionOf(appended, 7) + 80);
      records.length = 0;
      const plog = await openLog(dir);
      await plog.close();
      const warnings = records.filter((r) => r.level === "warning");
      assert.equal(warnings.length, 1);
      const props = warnings[0]!.properties;
      assert.equal(props.offset, 21);
      assert.equal(props.bytes, positionOf(appended, 10) - positionOf(appended, 7));
      assert.match(String(props.problem), /CRC mismatch/);
    });
  } finally {
    await reset();
  }
});

Deno.test("PartitionLog.open() with unreadable checkpoints scans everything and keeps all data", async () => {
  await withTempDir(async (dir) => {
    const config = testConfig({ segmentBytes: 1500 });
    const appended = await writeLog(dir, 20, config);
    Deno.writeTextFileSync(`${dir}/recovery-point`, "garbage");
    Deno.writeTextFileSync(`${dir}/log-start-offset`, "0\n12x\n");
    const plog = await openLog(dir, config);
    try {
      assert.equal(plog.logStartOffset, 0);
      assert.equal(plog.logEndOffset, 60);
      assert.deepEqual(readAll(plog), concat(appended.map((a) => a.batch)));
    } finally {
      await plog.close();
    }
    assert.match(Deno.readTextFileSync(`${dir}/recovery-point`), /^0\n\d+\n$/);
  });
});
