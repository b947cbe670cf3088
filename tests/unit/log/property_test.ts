import assert from "node:assert/strict";
import fc from "fast-check";
import { buildSizedBatch } from "./_batches.ts";
import { concat, openLog, readAll, testConfig, withTempDir } from "./_helpers.ts";
import type { PartitionLog } from "../../../lib/log/mod.ts";

type Op =
  | { kind: "append"; batches: { records: number; valueBytes: number }[] }
  | { kind: "reopen" }
  | { kind: "truncate"; fraction: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      batches: fc.array(
        fc.record({
          records: fc.integer({ min: 1, max: 8 }),
          valueBytes: fc.integer({ min: 0, max: 3000 }),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "reopen" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("truncate" as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
);

/** A bounded read, as fractions of the log's offsets and a byte budget. */
interface Query {
  at: number;
  maxBytes: number;
  until: number;
  minOne: boolean;
}

const queryArb: fc.Arbitrary<Query> = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  maxBytes: fc.integer({ min: 0, max: 30_000 }),
  until: fc.double({ min: 0, max: 1.2, noNaN: true }),
  minOne: fc.boolean(),
});

/**
 * A read bounded by bytes and by offset returns whole batches: those of the unbounded
 * read of the same segment, from the batch holding the offset, below the offset bound,
 * as many as fit in the budget (the first one anyway with minOneMessage).
 */
function checkBoundedRead(
  plog: PartitionLog,
  model: { bytes: Uint8Array; base: number; last: number }[],
  q: Query,
): void {
  const end = plog.logEndOffset;
  if (end === 0) return;
  const offset = Math.min(end - 1, Math.floor(q.at * end));
  const maxOffset = Math.floor(q.until * end);
  const got = plog.read(offset, q.maxBytes, { maxOffset, minOneMessage: q.minOne }).records;
  // The rest of the segment, whole batches, from the one holding `offset`.
  const rest = plog.read(offset, 1 << 30).records;
  const firstIndex = model.findIndex((m) => m.last >= offset);
  const expected: Uint8Array[] = [];
  let taken = 0;
  for (let i = firstIndex, at = 0; i < model.length && at < rest.length; i++) {
    const m = model[i]!;
    if (m.base >= maxOffset) break;
    const fits = taken + m.bytes.length <= q.maxBytes || (q.minOne && expected.length === 0);
    if (!fits) break;
    expected.push(m.bytes);
    taken += m.bytes.length;
    at += m.bytes.length;
  }
  assert.deepEqual(got, concat(expected), `read(${offset}, ${q.maxBytes}, <${maxOffset})`);
  assert.deepEqual(
    plog.slice(offset, q.maxBytes, { maxOffset, minOneMessage: q.minOne }).bytes(),
    got,
  );
}

const seedEnv = Deno.env.get("LOG_PROP_SEED");

Deno.test("PartitionLog property: random appends, truncations and reopens read back byte-exact", async () => {
  let seq = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 25 }),
      fc.integer({ min: 1024, max: 20_000 }),
      fc.integer({ min: 0, max: 5000 }),
      fc.array(queryArb, { maxLength: 12 }),
      async (ops, segmentBytes, indexIntervalBytes, queries) => {
        const config = testConfig({ segmentBytes, indexIntervalBytes });
        await withTempDir(async (dir) => {
          let plog: PartitionLog = await openLog(dir, config);
          // The model: stored batches in order, with their offsets.
          let model: { bytes: Uint8Array; base: number; last: number }[] = [];
          try {
            for (const op of ops) {
              if (op.kind === "append") {
                const batches = op.batches.map((b) =>
                  buildSizedBatch(b.records, b.valueBytes, { seed: seq++ })
                );
                const r = plog.append(batches, { leaderEpoch: 2 });
                let base = r.baseOffset;
                for (const [i, b] of batches.entries()) {
                  const n = op.batches[i]!.records;
                  model.push({ bytes: b, base, last: base + n - 1 });
                  base += n;
                }
                assert.equal(base - 1, r.lastOffset);
              } else if (op.kind === "reopen") {
                await plog.close();
                plog = await openLog(dir, config);
              } else {
                const to = Math.floor(op.fraction * plog.logEndOffset);
                await plog.truncateTo(to);
                model = model.filter((m) => m.last < to);
              }
              const end = model.length === 0 ? 0 : model[model.length - 1]!.last + 1;
              assert.equal(plog.logEndOffset, end);
            }
            await plog.close();
            plog = await openLog(dir, config);
            assert.deepEqual(readAll(plog), concat(model.map((m) => m.bytes)));
            for (const m of model) {
              assert.deepEqual(plog.read(m.last, 1, { minOneMessage: true }).records, m.bytes);
            }
            for (const q of queries) checkBoundedRead(plog, model, q);
          } finally {
            await plog.close();
          }
        });
      },
    ),
    { numRuns: 40, ...(seedEnv !== undefined ? { seed: Number(seedEnv) } : {}) },
  );
});
