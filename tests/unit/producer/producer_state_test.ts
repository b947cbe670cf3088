/**
 * ProducerStateManager: every rule of Kafka 3.x's ProducerAppendInfo as a table of
 * (state before, incoming batches) → outcome, plus the 5-batch cache, epoch changes,
 * int32 sequence wraparound and expiry.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  incrementSequence,
  NUM_BATCHES_TO_RETAIN,
  type ProducerBatch,
  ProducerStateError,
  ProducerStateManager,
} from "../../../lib/producer/mod.ts";
import { ErrorCode } from "../../../lib/protocol/mod.ts";

const INT32_MAX = 0x7fffffff;

function sum(batches: ProducerBatch[]): number {
  return batches.reduce((n, b) => n + b.lastOffsetDelta + 1, 0);
}
const T = 1_000;

/** A batch of `count` records from producer `pid`. */
function batch(pid: bigint, epoch: number, seq: number, count = 1): ProducerBatch {
  return {
    producerId: pid,
    producerEpoch: epoch,
    baseSequence: seq,
    lastOffsetDelta: count - 1,
    maxTimestamp: 42,
  };
}

/** A state with `batches` appended in order from offset 0 (no checks). */
function stateWith(batches: ProducerBatch[]): { state: ProducerStateManager; offsets: number[] } {
  const state = new ProducerStateManager("t-0");
  const offsets: number[] = [];
  let offset = 0;
  for (const b of batches) {
    offsets.push(offset);
    state.onBatchAppended(b, offset, T);
    offset += b.lastOffsetDelta + 1;
  }
  return { state, offsets };
}

type Outcome =
  | "ok"
  | { duplicateOf: number }
  | typeof ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
  | typeof ErrorCode.INVALID_PRODUCER_EPOCH
  | typeof ErrorCode.INVALID_RECORD;

interface Case {
  name: string;
  before: ProducerBatch[];
  incoming: ProducerBatch[];
  expect: Outcome;
}

const P = 7n;
const Q = 8n;

const CASES: Case[] = [
  {
    name: "no producer id (-1) is never checked",
    before: [],
    incoming: [batch(-1n, -1, -1)],
    expect: "ok",
  },
  {
    name: "no producer id is not checked even after idempotent batches",
    before: [batch(P, 0, 0)],
    incoming: [batch(-1n, -1, -1)],
    expect: "ok",
  },
  { name: "new producer at sequence 0", before: [], incoming: [batch(P, 0, 0)], expect: "ok" },
  {
    name: "new producer at sequence 5 is accepted (unknown: state may have expired; Kafka 3.x)",
    before: [],
    incoming: [batch(P, 0, 5)],
    expect: "ok",
  },
  {
    name: "new producer with a later epoch and any sequence is accepted",
    before: [],
    incoming: [batch(P, 3, 17)],
    expect: "ok",
  },
  {
    name: "producer id >= 0 with sequence -1 is INVALID_RECORD",
    before: [],
    incoming: [batch(P, 0, -1)],
    expect: ErrorCode.INVALID_RECORD,
  },
  {
    name: "next sequence after a single-record batch",
    before: [batch(P, 0, 0)],
    incoming: [batch(P, 0, 1)],
    expect: "ok",
  },
  {
    name: "next sequence after a multi-record batch",
    before: [batch(P, 0, 0, 10)],
    incoming: [batch(P, 0, 10, 3)],
    expect: "ok",
  },
  {
    name: "a gap is OUT_OF_ORDER_SEQUENCE_NUMBER",
    before: [batch(P, 0, 0, 10)],
    incoming: [batch(P, 0, 11)],
    expect: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  },
  {
    name: "a sequence inside the last batch (not its exact range) is OUT_OF_ORDER",
    before: [batch(P, 0, 0, 10)],
    incoming: [batch(P, 0, 5, 5)],
    expect: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  },
  {
    name: "an exact retry of the last batch is a duplicate",
    before: [batch(P, 0, 0, 10)],
    incoming: [batch(P, 0, 0, 10)],
    expect: { duplicateOf: 0 },
  },
  {
    name: "an exact retry of an older cached batch is a duplicate",
    before: [batch(P, 0, 0, 2), batch(P, 0, 2, 2), batch(P, 0, 4, 2)],
    incoming: [batch(P, 0, 2, 2)],
    expect: { duplicateOf: 1 },
  },
  {
    name: "a retry of the oldest of the last 5 batches is a duplicate",
    before: [0, 1, 2, 3, 4, 5].map((i) => batch(P, 0, i)),
    incoming: [batch(P, 0, 1)],
    expect: { duplicateOf: 1 },
  },
  {
    name: "a retry of a batch evicted from the 5-batch cache is OUT_OF_ORDER",
    before: [0, 1, 2, 3, 4, 5].map((i) => batch(P, 0, i)),
    incoming: [batch(P, 0, 0)],
    expect: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  },
  {
    name: "same first sequence but a different record count is not a duplicate",
    before: [batch(P, 0, 0, 3)],
    incoming: [batch(P, 0, 0, 2)],
    expect: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  },
  {
    name: "an older epoch is INVALID_PRODUCER_EPOCH",
    before: [batch(P, 2, 0)],
    incoming: [batch(P, 1, 1)],
    expect: ErrorCode.INVALID_PRODUCER_EPOCH,
  },
  {
    name: "an older epoch is INVALID_PRODUCER_EPOCH even for a cached sequence range",
    before: [batch(P, 1, 0), batch(P, 2, 0)],
    incoming: [batch(P, 1, 0)],
    expect: ErrorCode.INVALID_PRODUCER_EPOCH,
  },
  {
    name: "a newer epoch starting at sequence 0 is accepted",
    before: [batch(P, 0, 0, 10)],
    incoming: [batch(P, 1, 0)],
    expect: "ok",
  },
  {
    name: "a newer epoch not starting at 0 is OUT_OF_ORDER",
    before: [batch(P, 0, 0, 10)],
    incoming: [batch(P, 1, 10)],
    expect: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  },
  {
    name: "sequences wrap from int32 max to 0",
    before: [batch(P, 0, INT32_MAX - 1, 2)],
    incoming: [batch(P, 0, 0)],
    expect: "ok",
  },
  {
    name: "a batch spanning the wrap continues at the wrapped sequence",
    before: [batch(P, 0, INT32_MAX - 1, 4)],
    incoming: [batch(P, 0, 2)],
    expect: "ok",
  },
  {
    name: "a retry of a batch spanning the wrap is a duplicate",
    before: [batch(P, 0, INT32_MAX - 1, 4)],
    incoming: [batch(P, 0, INT32_MAX - 1, 4)],
    expect: { duplicateOf: 0 },
  },
  {
    name: "producers are independent",
    before: [batch(P, 0, 0, 10), batch(Q, 4, 0)],
    incoming: [batch(Q, 4, 1), batch(P, 0, 10)],
    expect: "ok",
  },
  {
    name: "two batches of one producer in a request are checked in order",
    before: [batch(P, 0, 0)],
    incoming: [batch(P, 0, 1, 2), batch(P, 0, 3)],
    expect: "ok",
  },
  {
    name: "a gap between two batches of one request is OUT_OF_ORDER",
    before: [batch(P, 0, 0)],
    incoming: [batch(P, 0, 1, 2), batch(P, 0, 4)],
    expect: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  },
  {
    name: "a new producer's second batch in a request must follow its first",
    before: [],
    incoming: [batch(P, 0, 0, 2), batch(P, 0, 3)],
    expect: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  },
  {
    name: "an epoch bump inside a request fences the old epoch's next batch",
    before: [batch(P, 0, 0)],
    incoming: [batch(P, 1, 0), batch(P, 0, 1)],
    expect: ErrorCode.INVALID_PRODUCER_EPOCH,
  },
  {
    name: "a duplicate later in a request is reported",
    before: [batch(P, 0, 0), batch(Q, 0, 0)],
    incoming: [batch(P, 0, 1), batch(Q, 0, 0)],
    expect: { duplicateOf: 1 },
  },
];

Deno.test("ProducerStateManager.checkAppend() follows Kafka's producer rules", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      const { state, offsets } = stateWith(c.before);
      const before = state.entries();
      let outcome: Outcome;
      try {
        const dup = state.checkAppend(c.incoming);
        outcome = dup === null ? "ok" : { duplicateOf: offsets.indexOf(dup.firstOffset) };
        if (dup !== null) {
          const original = c.before[offsets.indexOf(dup.firstOffset)]!;
          assert.equal(dup.lastOffset, dup.firstOffset + original.lastOffsetDelta);
          assert.equal(dup.timestamp, original.maxTimestamp);
        }
      } catch (err) {
        assert.ok(err instanceof ProducerStateError, String(err));
        outcome = err.code as Outcome;
      }
      assert.deepEqual(outcome, c.expect);
      // Checking never changes the state.
      assert.deepEqual(state.entries(), before);
    });
  }
});

Deno.test("ProducerStateManager.onBatchAppended() keeps the last 5 batches of the current epoch", async (t) => {
  await t.step("the cache holds at most NUM_BATCHES_TO_RETAIN batches, oldest first", () => {
    const { state } = stateWith([0, 1, 2, 3, 4, 5, 6].map((i) => batch(P, 0, i)));
    const e = state.entry(P)!;
    assert.equal(NUM_BATCHES_TO_RETAIN, 5);
    assert.deepEqual(e.batches.map((b) => b.firstSeq), [2, 3, 4, 5, 6]);
    assert.deepEqual(e.batches.map((b) => b.firstOffset), [2, 3, 4, 5, 6]);
  });
  await t.step("a new epoch clears the cached batches", () => {
    const { state } = stateWith([batch(P, 0, 0), batch(P, 0, 1), batch(P, 1, 0, 3)]);
    const e = state.entry(P)!;
    assert.equal(e.producerEpoch, 1);
    assert.deepEqual(e.batches, [
      { firstSeq: 0, lastSeq: 2, firstOffset: 2, lastOffset: 4, timestamp: 42 },
    ]);
  });
  await t.step("batches without a producer id are not tracked", () => {
    const { state } = stateWith([batch(-1n, -1, -1)]);
    assert.equal(state.size, 0);
  });
  await t.step("entry() hands out copies", () => {
    const { state } = stateWith([batch(P, 0, 0)]);
    (state.entry(P)!.batches as unknown[]).length = 0;
    assert.equal(state.entry(P)!.batches.length, 1);
  });
});

Deno.test("ProducerStateManager.removeExpired() forgets producers idle for expirationMs", () => {
  const state = new ProducerStateManager("t-0");
  state.onBatchAppended(batch(P, 0, 0), 0, 1_000);
  state.onBatchAppended(batch(Q, 0, 0), 1, 5_000);
  assert.equal(state.removeExpired(10_999, 10_000), 0);
  assert.equal(state.removeExpired(11_000, 10_000), 1);
  assert.equal(state.entry(P), undefined);
  assert.ok(state.entry(Q));
  // An expired producer is unknown again: any sequence is accepted, as in Kafka.
  assert.equal(state.checkAppend([batch(P, 0, 1)]), null);
});

Deno.test("incrementSequence() wraps past int32 max as Kafka does", () => {
  assert.equal(incrementSequence(0, 4), 4);
  assert.equal(incrementSequence(INT32_MAX, 1), 0);
  assert.equal(incrementSequence(INT32_MAX - 1, 3), 1);
  assert.equal(incrementSequence(INT32_MAX - 3, 3), INT32_MAX);
});

Deno.test("ProducerStateManager: a producer's in-order stream with retries is deduplicated (property)", () => {
  // A producer sends batches of random sizes in order; each may be retried (after being
  // appended) up to the 5 in-flight limit. The log must end up with each batch once.
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          count: fc.integer({ min: 1, max: 5 }),
          retryLag: fc.integer({ min: 0, max: 6 }),
        }),
        {
          minLength: 1,
          maxLength: 40,
        },
      ),
      fc.integer({ min: 0, max: INT32_MAX }),
      (plan, startSeq) => {
        const state = new ProducerStateManager("t-0");
        const sent: ProducerBatch[] = [];
        // The producer is unknown, so its first sequence may be anything (and may wrap).
        let seq = startSeq;
        let logEnd = 0;
        let appended = 0;
        for (const step of plan) {
          const b = batch(P, 0, seq, step.count);
          seq = incrementSequence(seq, step.count);
          assert.equal(state.checkAppend([b]), null);
          state.onBatchAppended(b, logEnd, T);
          logEnd += step.count;
          appended++;
          sent.push(b);
          // Retry one of the recent batches after it was appended.
          const target = sent.length - 1 - step.retryLag;
          const retry = sent[target];
          if (retry === undefined) continue;
          let dup = null;
          let code: number | null = null;
          try {
            dup = state.checkAppend([retry]);
          } catch (err) {
            code = (err as ProducerStateError).code;
          }
          if (step.retryLag < NUM_BATCHES_TO_RETAIN) {
            assert.ok(dup !== null, `retry of batch ${target} not recognised`);
            assert.equal(dup.firstOffset, logEnd - sum(sent.slice(target)));
          } else assert.equal(code, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
        }
        assert.equal(appended, plan.length);
      },
    ),
    { numRuns: 200 },
  );
});
