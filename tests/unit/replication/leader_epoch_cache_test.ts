import assert from "node:assert/strict";
import fc from "fast-check";
import {
  endOffsetForEpoch,
  type EpochEntry,
  LeaderEpochCache,
} from "../../../lib/replication/mod.ts";

function e(epoch: number, startOffset: number): EpochEntry {
  return { epoch, startOffset };
}

Deno.test("LeaderEpochCache.assign() follows Kafka's rules", async (t) => {
  const cases: {
    name: string;
    start: EpochEntry[];
    assign: [number, number];
    changed: boolean;
    end: EpochEntry[];
  }[] = [
    { name: "first entry", start: [], assign: [0, 0], changed: true, end: [e(0, 0)] },
    {
      name: "a higher epoch at a higher offset appends",
      start: [e(0, 0)],
      assign: [2, 10],
      changed: true,
      end: [e(0, 0), e(2, 10)],
    },
    {
      name: "the same epoch at a later offset is ignored",
      start: [e(0, 0), e(2, 10)],
      assign: [2, 15],
      changed: false,
      end: [e(0, 0), e(2, 10)],
    },
    {
      name: "the same epoch at the same offset is ignored",
      start: [e(0, 0), e(2, 10)],
      assign: [2, 10],
      changed: false,
      end: [e(0, 0), e(2, 10)],
    },
    {
      name: "the same epoch at an earlier offset moves its start",
      start: [e(0, 0), e(2, 10)],
      assign: [2, 5],
      changed: true,
      end: [e(0, 0), e(2, 5)],
    },
    {
      name: "a higher epoch at the latest's start replaces the epoch that wrote nothing",
      start: [e(0, 0), e(2, 10)],
      assign: [3, 10],
      changed: true,
      end: [e(0, 0), e(3, 10)],
    },
    {
      name: "a higher epoch at a lower offset removes the conflicting entries",
      start: [e(0, 0), e(2, 10), e(3, 20)],
      assign: [4, 15],
      changed: true,
      end: [e(0, 0), e(2, 10), e(4, 15)],
    },
    {
      name: "a lower epoch removes every higher epoch",
      start: [e(0, 0), e(2, 10), e(3, 20)],
      assign: [1, 25],
      changed: true,
      end: [e(0, 0), e(1, 25)],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const cache = new LeaderEpochCache(c.start);
      assert.equal(cache.assign(...c.assign), c.changed);
      assert.deepEqual(cache.entries, c.end);
    });
  }
  await t.step("negative epochs and offsets are refused", () => {
    const cache = new LeaderEpochCache();
    assert.throws(() => cache.assign(-1, 0), RangeError);
    assert.throws(() => cache.assign(0, -1), RangeError);
  });
  await t.step("the constructor refuses entries that do not increase", () => {
    assert.throws(() => new LeaderEpochCache([e(1, 0), e(1, 5)]), RangeError);
    assert.throws(() => new LeaderEpochCache([e(1, 5), e(2, 5)]), RangeError);
    assert.throws(() => new LeaderEpochCache([e(2, 0), e(1, 5)]), RangeError);
  });
});

Deno.test("LeaderEpochCache.endOffsetFor() answers like Kafka's endOffsetFor", async (t) => {
  // Epoch 1 starts at 5, epoch 3 at 12, epoch 4 at 20; the log ends at 30.
  const entries = [e(1, 5), e(3, 12), e(4, 20)];
  const leo = 30;
  const cases: { requested: number; epoch: number; endOffset: number; why: string }[] = [
    { requested: -1, epoch: -1, endOffset: -1, why: "UNDEFINED_EPOCH asks nothing" },
    { requested: 4, epoch: 4, endOffset: 30, why: "the latest epoch ends at the LEO" },
    { requested: 3, epoch: 3, endOffset: 20, why: "a known epoch ends at the next start" },
    { requested: 1, epoch: 1, endOffset: 12, why: "the earliest known epoch" },
    { requested: 2, epoch: 1, endOffset: 12, why: "unknown: the largest epoch <= requested" },
    {
      requested: 0,
      epoch: 0,
      endOffset: 5,
      why: "below every epoch: the requested epoch ends at the earliest start (Kafka)",
    },
    { requested: 5, epoch: -1, endOffset: -1, why: "above the latest epoch: UNDEFINED" },
  ];
  for (const c of cases) {
    await t.step(`epoch ${c.requested}: ${c.why}`, () => {
      const r = new LeaderEpochCache(entries).endOffsetFor(c.requested, leo);
      assert.deepEqual(r, { epoch: c.epoch, endOffset: c.endOffset });
    });
  }
  await t.step("an empty cache answers UNDEFINED", () => {
    assert.deepEqual(endOffsetForEpoch([], 0, 10), { epoch: -1, endOffset: -1 });
  });
});

Deno.test("LeaderEpochCache.truncateFromEnd() and truncateFromStart()", async (t) => {
  const entries = [e(1, 5), e(3, 12), e(4, 20)];
  const ends: [number, EpochEntry[], boolean][] = [
    [30, entries, false],
    [21, entries, false],
    [20, [e(1, 5), e(3, 12)], true],
    [13, [e(1, 5), e(3, 12)], true],
    [12, [e(1, 5)], true],
    [5, [], true],
    [0, [], true],
  ];
  for (const [offset, expected, changed] of ends) {
    await t.step(`truncateFromEnd(${offset})`, () => {
      const cache = new LeaderEpochCache(entries);
      assert.equal(cache.truncateFromEnd(offset), changed);
      assert.deepEqual(cache.entries, expected);
    });
  }
  const starts: [number, EpochEntry[], boolean][] = [
    [0, entries, false],
    [5, entries, false],
    [6, [e(1, 6), e(3, 12), e(4, 20)], true],
    [12, [e(3, 12), e(4, 20)], true],
    [15, [e(3, 15), e(4, 20)], true],
    [25, [e(4, 25)], true],
  ];
  for (const [offset, expected, changed] of starts) {
    await t.step(`truncateFromStart(${offset})`, () => {
      const cache = new LeaderEpochCache(entries);
      assert.equal(cache.truncateFromStart(offset), changed);
      assert.deepEqual(cache.entries, expected);
    });
  }
  await t.step("epochForOffset() finds the epoch of a record", () => {
    const cache = new LeaderEpochCache(entries);
    assert.deepEqual([4, 5, 11, 12, 19, 20, 99].map((o) => cache.epochForOffset(o)), [
      -1,
      1,
      1,
      3,
      3,
      4,
      4,
    ]);
  });
});

Deno.test("LeaderEpochCache keeps its invariant under any operations (property)", () => {
  const op = fc.oneof(
    fc.tuple(fc.constant("assign" as const), fc.nat(20), fc.nat(200)),
    fc.tuple(fc.constant("end" as const), fc.nat(200), fc.constant(0)),
    fc.tuple(fc.constant("start" as const), fc.nat(200), fc.constant(0)),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const cache = new LeaderEpochCache();
      for (const [kind, a, b] of ops) {
        if (kind === "assign") cache.assign(a, b);
        else if (kind === "end") cache.truncateFromEnd(a);
        else cache.truncateFromStart(a);
        // The constructor checks the invariant.
        new LeaderEpochCache(cache.entries);
        if (kind === "assign") assert.deepEqual(cache.latestEntry?.epoch, a);
        if (kind === "end") assert.ok(cache.entries.every((x) => x.startOffset < a));
        if (kind === "start") assert.ok(cache.entries.every((x) => x.startOffset >= a));
      }
    }),
  );
});
