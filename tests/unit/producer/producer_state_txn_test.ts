/**
 * Transactions in the partition's producer state: open transactions, markers, the aborted
 * transactions index, the first unstable offset, and the checks on mixed writes and stale
 * markers.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { ProducerStateError, ProducerStateManager } from "../../../lib/producer/mod.ts";

const TXN = 0x10;

function batch(
  producerId: bigint,
  seq: number,
  records: number,
  opts: { txn?: boolean; epoch?: number } = {},
) {
  return {
    producerId,
    producerEpoch: opts.epoch ?? 0,
    baseSequence: seq,
    lastOffsetDelta: records - 1,
    maxTimestamp: 1,
    attributes: opts.txn === false ? 0 : TXN,
  };
}

const marker = (producerId: bigint, commit: boolean, epoch = 0, coordinatorEpoch = 0) => ({
  producerId,
  producerEpoch: epoch,
  coordinatorEpoch,
  commit,
});

Deno.test("a transaction is open from its first batch to its marker; aborted ones are indexed", () => {
  const s = new ProducerStateManager("t-0");
  s.onBatchAppended(batch(1n, 0, 5), 10, 0);
  s.onBatchAppended(batch(2n, 0, 5), 15, 0);
  s.onBatchAppended(batch(1n, 5, 5), 20, 0);
  assert.equal(s.firstUnstableOffset(0), 10);
  assert.deepEqual([...s.ongoingTransactions()], [[1n, 10], [2n, 15]]);
  assert.deepEqual(s.onMarkerAppended(marker(1n, false), 25, 0), {
    producerId: 1n,
    firstOffset: 10,
    lastOffset: 25,
  });
  // The marker is not below the high watermark yet: the transaction still holds the LSO.
  assert.equal(s.firstUnstableOffset(25), 10);
  assert.equal(s.firstUnstableOffset(26), 15);
  s.onMarkerAppended(marker(2n, true), 26, 0);
  assert.equal(s.firstUnstableOffset(27), null);
  assert.deepEqual(s.abortedTransactions(0, 100), [{
    producerId: 1n,
    firstOffset: 10,
    lastOffset: 25,
  }]);
  assert.deepEqual(s.abortedTransactions(26, 100), [], "ended before the read");
  assert.deepEqual(s.abortedTransactions(0, 10), [], "starts after the read");
  s.trimAborted(26);
  assert.deepEqual(s.allAborted(), []);
});

Deno.test("a marker for a producer without an open transaction changes nothing but its epochs", () => {
  const s = new ProducerStateManager("t-0");
  assert.equal(s.onMarkerAppended(marker(3n, true, 2, 5), 0, 0), null);
  assert.equal(s.entry(3n)?.producerEpoch, 2);
  assert.equal(s.entry(3n)?.coordinatorEpoch, 5);
  assert.equal(s.firstUnstableOffset(1), null);
});

Deno.test("stale markers are refused: older producer epoch, older coordinator epoch", () => {
  const s = new ProducerStateManager("t-0");
  s.onBatchAppended(batch(1n, 0, 1, { epoch: 3 }), 0, 0);
  s.onMarkerAppended(marker(1n, true, 3, 4), 1, 0);
  const code = (f: () => void) => {
    try {
      f();
    } catch (err) {
      assert.ok(err instanceof ProducerStateError);
      return err.code;
    }
    return ErrorCode.NONE;
  };
  assert.equal(
    code(() => s.checkMarker(marker(1n, false, 2, 4))),
    ErrorCode.INVALID_PRODUCER_EPOCH,
  );
  assert.equal(
    code(() => s.checkMarker(marker(1n, false, 3, 3))),
    ErrorCode.TRANSACTION_COORDINATOR_FENCED,
  );
  assert.equal(code(() => s.checkMarker(marker(1n, false, 4, 4))), ErrorCode.NONE);
});

Deno.test("a non-transactional write while a transaction is open is INVALID_TXN_STATE", () => {
  const s = new ProducerStateManager("t-0");
  s.onBatchAppended(batch(1n, 0, 2), 0, 0);
  assert.throws(
    () => s.checkAppend([batch(1n, 2, 1, { txn: false })]),
    (e: unknown) => e instanceof ProducerStateError && e.code === ErrorCode.INVALID_TXN_STATE,
  );
  assert.equal(s.checkAppend([batch(1n, 2, 1)]), null);
  // Within one request too.
  const fresh = new ProducerStateManager("t-1");
  assert.throws(
    () => fresh.checkAppend([batch(5n, 0, 1), batch(5n, 1, 1, { txn: false })]),
    (e: unknown) => e instanceof ProducerStateError && e.code === ErrorCode.INVALID_TXN_STATE,
  );
  assert.throws(
    () => fresh.checkAppend([{ ...batch(-1n, -1, 1), producerId: -1n }]),
    (e: unknown) => e instanceof ProducerStateError && e.code === ErrorCode.INVALID_RECORD,
  );
});

Deno.test("a coordinator's transactional batch carries no sequence; only its epoch is checked", () => {
  const s = new ProducerStateManager("__consumer_offsets-3");
  const b = batch(7n, -1, 2, { epoch: 1 });
  assert.equal(s.checkAppend([b], "coordinator"), null);
  s.onBatchAppended(b, 40, 0);
  assert.equal(s.firstUnstableOffset(100), 40);
  assert.throws(
    () => s.checkAppend([batch(7n, -1, 1, { epoch: 0 })], "coordinator"),
    ProducerStateError,
  );
  s.onMarkerAppended(marker(7n, true, 1), 42, 0);
  assert.equal(s.firstUnstableOffset(43), null);
});

Deno.test("producers with an open transaction never expire", () => {
  const s = new ProducerStateManager("t-0");
  s.onBatchAppended(batch(1n, 0, 1), 0, 0);
  s.onBatchAppended(batch(2n, 0, 1, { txn: false }), 1, 0);
  assert.equal(s.removeExpired(1_000_000, 10), 1);
  assert.ok(s.entry(1n) !== undefined);
});

Deno.test("property: the LSO is the first offset of the oldest undecided transaction, load(entries) keeps it", () => {
  fc.assert(fc.property(
    fc.array(
      fc.record({
        producer: fc.integer({ min: 1, max: 4 }),
        end: fc.boolean(),
        commit: fc.boolean(),
      }),
      {
        maxLength: 60,
      },
    ),
    (steps) => {
      const s = new ProducerStateManager("t-0");
      const open = new Map<bigint, number>();
      const aborted: { producerId: bigint; firstOffset: number; lastOffset: number }[] = [];
      const seq = new Map<bigint, number>();
      let offset = 0;
      for (const step of steps) {
        const id = BigInt(step.producer);
        if (step.end) {
          const first = open.get(id);
          s.onMarkerAppended(marker(id, step.commit), offset, 0);
          if (first !== undefined && !step.commit) {
            aborted.push({ producerId: id, firstOffset: first, lastOffset: offset });
          }
          open.delete(id);
          offset++;
        } else {
          const n = seq.get(id) ?? 0;
          s.onBatchAppended(batch(id, n, 2), offset, 0);
          seq.set(id, n + 2);
          if (!open.has(id)) open.set(id, offset);
          offset += 2;
        }
      }
      const expected = open.size === 0 ? null : Math.min(...open.values());
      // Every marker is below this high watermark.
      assert.equal(s.firstUnstableOffset(offset), expected);
      assert.deepEqual(s.abortedTransactions(0, offset), aborted);
      const copy = new ProducerStateManager("t-0");
      copy.load(s.entries(), s.allAborted());
      assert.equal(copy.firstUnstableOffset(offset), expected);
      assert.deepEqual(copy.abortedTransactions(0, offset), aborted);
    },
  ));
});
