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

const seedEnv = Deno.env.get("LOG_PROP_SEED");

Deno.test("PartitionLog property: random appends, truncations and reopens read back byte-exact", async () => {
  let seq = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(opArb, { minLength: 1, maxLength: 25 }),
      fc.integer({ min: 1024, max: 20_000 }),
      fc.integer({ min: 0, max: 5000 }),
      async (ops, segmentBytes, indexIntervalBytes) => {
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
          } finally {
            await plog.close();
          }
        });
      },
    ),
    { numRuns: 40, ...(seedEnv !== undefined ? { seed: Number(seedEnv) } : {}) },
  );
});
