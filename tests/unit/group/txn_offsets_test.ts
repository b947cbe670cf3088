/**
 * Transactional offset commits (TxnOffsetCommit) in the group coordinator: only the
 * transaction's own records are written as its transactional batch, commits stay invisible
 * (and unstable) until the marker, an abort drops them even when it comes before their
 * append is durable, and a plain commit written after a transaction's commit wins.
 */
import assert from "node:assert/strict";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import { groupPartition } from "../../../lib/group/mod.ts";
import { Harness, testConfig } from "./_harness.ts";

const P = groupPartition("g", 50);

Deno.test("a TxnOffsetCommit's transactional batch holds only the transaction's commits", () => {
  const h = new Harness(
    testConfig({ offsetsRetentionMs: 60_000, offsetsRetentionCheckIntervalMs: 10_000 }),
  );
  h.commit({ groupId: "other", offsets: [{ topic: "t", partition: 0, offset: 5 }] });
  h.now += 120_000; // "other"'s offset expired; the expiry runs inside the next call
  const out = h.txnCommit({ producerId: 42n, offsets: [{ topic: "t", partition: 0, offset: 7 }] });
  assert.deepEqual(out.txn?.producerId, 42n);
  assert.deepEqual(out.txn?.records.map((r) => [r.kind, r.groupId]), [["offset", "g"]]);
  assert.ok(
    out.records.every((r) => r.groupId === "other"),
    "the expiry's records are written apart, not in the transaction",
  );
  assert.ok(out.records.some((r) => r.kind === "offset-tombstone"));
});

Deno.test("transactional commits are unstable until the commit marker, then visible", () => {
  const h = new Harness();
  h.txnCommit({ producerId: 1n, offsets: [{ topic: "t", partition: 0, offset: 10 }] });
  assert.deepEqual(h.fetchStable("g", "t", 0), [ErrorCode.UNSTABLE_OFFSET_COMMIT, -1n]);
  assert.deepEqual(h.fetchAll(), []);
  h.core.completeTransaction(1n, P, 50, true);
  assert.deepEqual(h.fetchStable("g", "t", 0), [ErrorCode.NONE, 10n]);
});

Deno.test("an abort marker that comes before the append is durable drops the commits", () => {
  const h = new Harness();
  h.holdAppends = true;
  h.txnCommit({ producerId: 1n, offsets: [{ topic: "t", partition: 0, offset: 10 }] });
  h.core.completeTransaction(1n, P, 50, false);
  h.completeAppend();
  assert.deepEqual(h.fetchStable("g", "t", 0), [ErrorCode.NONE, -1n]);
  // The producer's next transaction commits only its own offsets.
  h.holdAppends = false;
  h.txnCommit({ producerId: 1n, offsets: [{ topic: "t", partition: 1, offset: 3 }] });
  h.core.completeTransaction(1n, P, 50, true);
  assert.deepEqual(h.fetchAll(), ["t-1=3"]);
});

Deno.test("a failed append of transactional commits leaves nothing to commit", () => {
  const h = new Harness();
  h.holdAppends = true;
  h.txnCommit({ producerId: 1n, offsets: [{ topic: "t", partition: 0, offset: 10 }] });
  h.failAppend();
  h.core.completeTransaction(1n, P, 50, true);
  assert.deepEqual(h.fetchStable("g", "t", 0), [ErrorCode.NONE, -1n]);
});

Deno.test("a plain commit written after a transaction's commit wins over it", () => {
  const h = new Harness();
  h.txnCommit({ producerId: 1n, offsets: [{ topic: "t", partition: 0, offset: 10 }] });
  h.commit({ offsets: [{ topic: "t", partition: 0, offset: 20 }] });
  h.core.completeTransaction(1n, P, 50, true);
  assert.deepEqual(h.fetchAll(), ["t-0=20"]);
});
