/** The producer-state snapshot format: round trip, and refusal of anything malformed. */
import assert from "node:assert/strict";
import {
  decodeSnapshot,
  encodeSnapshot,
  type ProducerStateSnapshot,
} from "../../../lib/producer/mod.ts";

const SNAPSHOT: ProducerStateSnapshot = {
  offset: 120,
  lastBatch: { baseOffset: 110, lastOffset: 119, crc: 0xdeadbeef },
  logIncarnation: 2,
  entries: [
    {
      producerId: 9_007_199_254_740_993n, // beyond 2^53: kept exact as a string
      producerEpoch: 3,
      lastUpdateMs: 1_700_000_000_000,
      batches: [
        { firstSeq: 2147483646, lastSeq: 1, firstOffset: 100, lastOffset: 103, timestamp: 5 },
        { firstSeq: 2, lastSeq: 11, firstOffset: 110, lastOffset: 119, timestamp: -1 },
      ],
      currentTxnFirstOffset: 104,
      coordinatorEpoch: 7,
    },
    {
      producerId: 0n,
      producerEpoch: 0,
      lastUpdateMs: 0,
      batches: [],
      currentTxnFirstOffset: -1,
      coordinatorEpoch: -1,
    },
  ],
  aborted: [{ producerId: 5n, firstOffset: 20, lastOffset: 31 }],
};

Deno.test("encodeSnapshot()/decodeSnapshot() round-trip every field", () => {
  assert.deepEqual(decodeSnapshot(encodeSnapshot(SNAPSHOT)), SNAPSHOT);
  const empty = { offset: 0, lastBatch: null, logIncarnation: 0, entries: [], aborted: [] };
  assert.deepEqual(decodeSnapshot(encodeSnapshot(empty)), empty);
});

Deno.test("decodeSnapshot() reads snapshots written before logIncarnation existed as incarnation 0", () => {
  const { logIncarnation: _, ...old } = JSON.parse(encodeSnapshot(SNAPSHOT));
  assert.deepEqual(decodeSnapshot(JSON.stringify(old)), { ...SNAPSHOT, logIncarnation: 0 });
});

Deno.test("decodeSnapshot() reads snapshots written before transactions: no open transaction, nothing aborted", () => {
  const json = JSON.parse(encodeSnapshot(SNAPSHOT));
  delete json.aborted;
  json.producers = json.producers.map((p: unknown[]) => p.slice(0, 4));
  assert.deepEqual(decodeSnapshot(JSON.stringify(json)), {
    ...SNAPSHOT,
    entries: SNAPSHOT.entries.map((e) => ({
      ...e,
      currentTxnFirstOffset: -1,
      coordinatorEpoch: -1,
    })),
    aborted: [],
  });
});

Deno.test("decodeSnapshot() refuses malformed snapshots with SyntaxError", async (t) => {
  const good = JSON.parse(encodeSnapshot(SNAPSHOT));
  const cases: [string, unknown][] = [
    ["a torn file", encodeSnapshot(SNAPSHOT).slice(0, 40)],
    ["null", "null"],
    ["another version", { ...good, version: 2 }],
    ["a negative offset", { ...good, offset: -1 }],
    ["a fractional offset", { ...good, offset: 1.5 }],
    ["a fractional logIncarnation", { ...good, logIncarnation: 0.5 }],
    ["a lastBatch without crc", { ...good, lastBatch: { baseOffset: 1, lastOffset: 2 } }],
    ["producers not an array", { ...good, producers: {} }],
    ["a short producer entry", { ...good, producers: [["1", 0, 0]] }],
    ["a non-numeric producer id", { ...good, producers: [["-1", 0, 0, []]] }],
    ["a batch with 4 fields", { ...good, producers: [["1", 0, 0, [[1, 2, 3, 4]]]] }],
    ["a batch with a string", { ...good, producers: [["1", 0, 0, [[1, 2, 3, 4, "5"]]]] }],
    ["a bad transaction state", { ...good, producers: [["1", 0, 0, [], [1]]] }],
    ["a bad aborted transaction", { ...good, aborted: [["x", 1, 2]] }],
  ];
  for (const [name, value] of cases) {
    await t.step(name, () => {
      const text = typeof value === "string" ? value : JSON.stringify(value);
      assert.throws(() => decodeSnapshot(text), SyntaxError);
    });
  }
});
