/**
 * The transaction coordinator's state machine: InitProducerId (new ids, epoch bumps,
 * KIP-360 retries, fencing an open transaction), AddPartitionsToTxn, EndTxn and its
 * retries, markers completing a transaction, timeouts, id expiry, and a reload from the
 * records the transitions wrote.
 */
import assert from "node:assert/strict";
import { ErrorCode } from "../../../lib/protocol/mod.ts";
import {
  decodeTxnRecord,
  encodeTxnRecord,
  type Transition,
  TxnCoordinator,
  type TxnRecord,
  type TxnStep,
} from "../../../lib/txn/mod.ts";

const ID = "app-1";
const pr = (producerId: bigint, producerEpoch: number) => ({
  transactionalId: ID,
  producerId,
  producerEpoch,
});
const FENCED = ErrorCode.PRODUCER_FENCED;

/** A coordinator that has loaded every partition at coordinator epoch 3. */
function loaded(): { core: TxnCoordinator; log: TxnRecord[] } {
  const core = new TxnCoordinator({
    partitions: 50,
    transactionMaxTimeoutMs: 60_000,
    transactionalIdExpirationMs: 1_000_000,
  });
  for (let p = 0; p < 50; p++) core.load(p, 3, []);
  return { core, log: [] };
}

/** Writes the step's transition (through the record codec) and completes it. */
function persist(c: { core: TxnCoordinator; log: TxnRecord[] }, step: TxnStep) {
  assert.equal(
    step.kind,
    "write",
    JSON.stringify(step, (_k, v) => typeof v === "bigint" ? `${v}` : v),
  );
  const t = (step as { transition: Transition }).transition;
  const record: TxnRecord = t.target === null
    ? { kind: "txn-tombstone", transactionalId: t.transactionalId }
    : { kind: "txn", metadata: t.target };
  const { key, value } = encodeTxnRecord(record);
  c.log.push(decodeTxnRecord(key, value));
  return c.core.completed(t);
}

function init(c: ReturnType<typeof loaded>, now = 0, fresh: bigint | null = 100n) {
  return persist(c, c.core.initProducerId(ID, 10_000, null, fresh, now, 5));
}

Deno.test("InitProducerId: a new id gets a producer id at epoch 0, the next call bumps the epoch", () => {
  const c = loaded();
  assert.deepEqual(c.core.initProducerId(ID, 10_000, null, null, 0, 5), { kind: "needProducerId" });
  assert.deepEqual(init(c).reply, { code: ErrorCode.NONE, producerId: 100n, producerEpoch: 0 });
  assert.deepEqual(init(c, 1, null).reply, {
    code: ErrorCode.NONE,
    producerId: 100n,
    producerEpoch: 1,
  });
  // KIP-360: a retry with the previous epoch gets the current answer, no new bump.
  assert.deepEqual(
    c.core.initProducerId(ID, 10_000, { producerId: 100n, producerEpoch: 0 }, null, 2, 5),
    { kind: "reply", code: ErrorCode.NONE, producerId: 100n, producerEpoch: 1 },
  );
  assert.deepEqual(
    c.core.initProducerId(ID, 10_000, { producerId: 99n, producerEpoch: 0 }, null, 2, 5),
    { kind: "reply", code: FENCED },
  );
});

Deno.test("InitProducerId refuses a timeout above transaction.max.timeout.ms", () => {
  const c = loaded();
  assert.deepEqual(c.core.initProducerId(ID, 60_001, null, 1n, 0, 5), {
    kind: "reply",
    code: ErrorCode.INVALID_TRANSACTION_TIMEOUT,
  });
});

Deno.test("commit: AddPartitions, EndTxn, markers, CompleteCommit; retries and wrong calls", () => {
  const c = loaded();
  init(c);
  const parts = [{ topic: "b", partition: 1 }, { topic: "a", partition: 0 }];
  assert.deepEqual(c.core.addPartitions(pr(100n, 1), parts, 5, FENCED), {
    kind: "reply",
    code: FENCED,
  });
  assert.deepEqual(c.core.addPartitions(pr(7n, 0), parts, 5, FENCED), {
    kind: "reply",
    code: ErrorCode.INVALID_PRODUCER_ID_MAPPING,
  });
  assert.deepEqual(persist(c, c.core.addPartitions(pr(100n, 0), parts, 5, FENCED)).reply, {
    code: ErrorCode.NONE,
  });
  // Already in the transaction: no write.
  assert.deepEqual(c.core.addPartitions(pr(100n, 0), [parts[0]!], 6, FENCED), {
    kind: "reply",
    code: ErrorCode.NONE,
  });
  const end = c.core.endTxn(pr(100n, 0), true, 7, FENCED);
  const after = persist(c, end);
  assert.deepEqual(after.reply, { code: ErrorCode.NONE });
  assert.deepEqual(after.markers, {
    transactionalId: ID,
    producerId: 100n,
    producerEpoch: 0,
    coordinatorEpoch: 3,
    commit: true,
    partitions: [{ topic: "a", partition: 0 }, { topic: "b", partition: 1 }],
  });
  assert.equal(c.core.describe(ID)?.state, "PrepareCommit");
  // While markers go out: a retried commit waits, an abort is wrong, new partitions wait.
  assert.equal(
    (c.core.endTxn(pr(100n, 0), true, 8, FENCED) as { code: number }).code,
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
  assert.equal(
    (c.core.endTxn(pr(100n, 0), false, 8, FENCED) as { code: number }).code,
    ErrorCode.INVALID_TXN_STATE,
  );
  assert.equal(
    (c.core.addPartitions(pr(100n, 0), parts, 8, FENCED) as { code: number }).code,
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
  const complete = c.core.markersWritten(after.markers!, 9);
  assert.ok(complete !== null);
  persist(c, { kind: "write", transition: complete });
  assert.equal(c.core.describe(ID)?.state, "CompleteCommit");
  assert.deepEqual(c.core.describe(ID)?.partitions, []);
  assert.equal(
    (c.core.endTxn(pr(100n, 0), true, 10, FENCED) as { code: number }).code,
    ErrorCode.NONE,
  );
  assert.equal(
    (c.core.endTxn(pr(100n, 0), false, 10, FENCED) as { code: number }).code,
    ErrorCode.INVALID_TXN_STATE,
  );
});

Deno.test("a new incarnation fences an open transaction: abort with a bumped epoch, then the next epoch", () => {
  const c = loaded();
  init(c);
  persist(c, c.core.addPartitions(pr(100n, 0), [{ topic: "a", partition: 0 }], 1, FENCED));
  const step = c.core.initProducerId(ID, 10_000, null, null, 2, 5);
  assert.equal(step.kind, "write");
  assert.equal((step as { reply?: number }).reply, ErrorCode.CONCURRENT_TRANSACTIONS);
  const after = persist(c, step);
  assert.deepEqual(after.markers?.commit, false);
  assert.equal(after.markers?.producerEpoch, 1, "the abort markers carry the bumped epoch");
  // The old producer is fenced.
  assert.equal((c.core.endTxn(pr(100n, 0), true, 3, FENCED) as { code: number }).code, FENCED);
  persist(c, { kind: "write", transition: c.core.markersWritten(after.markers!, 4)! });
  assert.deepEqual(init(c, 5, null).reply, {
    code: ErrorCode.NONE,
    producerId: 100n,
    producerEpoch: 2,
  });
});

Deno.test("timeouts abort open transactions with the producer fenced; idle ids expire", () => {
  const c = loaded();
  init(c);
  persist(c, c.core.addPartitions(pr(100n, 0), [{ topic: "a", partition: 0 }], 1_000, FENCED));
  assert.equal(c.core.nextDeadlineMs(), 11_000);
  assert.deepEqual(c.core.tick(10_999), []);
  const [abort] = c.core.tick(11_000);
  assert.equal(abort?.purpose, "abort");
  const after = persist(c, { kind: "write", transition: abort! });
  assert.equal(after.markers?.producerEpoch, 1);
  persist(c, { kind: "write", transition: c.core.markersWritten(after.markers!, 11_001)! });
  assert.equal(c.core.describe(ID)?.state, "CompleteAbort");
  const [expire] = c.core.tick(11_001 + 1_000_000);
  assert.equal(expire?.purpose, "expire");
  persist(c, { kind: "write", transition: expire! });
  assert.equal(c.core.describe(ID), undefined);
});

Deno.test("a reload from the written records resumes the markers of a transaction being completed", () => {
  const c = loaded();
  init(c);
  persist(c, c.core.addPartitions(pr(100n, 0), [{ topic: "a", partition: 2 }], 1, FENCED));
  persist(c, c.core.endTxn(pr(100n, 0), false, 2, FENCED));
  const fresh = new TxnCoordinator();
  const p = fresh.partitionOf(ID);
  const jobs = fresh.load(p, 4, c.log);
  assert.deepEqual(jobs, [{
    transactionalId: ID,
    producerId: 100n,
    producerEpoch: 0,
    coordinatorEpoch: 4,
    commit: false,
    partitions: [{ topic: "a", partition: 2 }],
  }]);
  assert.equal(fresh.describe(ID)?.state, "PrepareAbort");
  // Unloading forgets the ids; their requests then go to the new coordinator.
  fresh.unload(p);
  assert.equal(fresh.describe(ID), undefined);
});

Deno.test("a transition that could not be persisted changes nothing", () => {
  const c = loaded();
  init(c);
  const step = c.core.addPartitions(pr(100n, 0), [{ topic: "a", partition: 0 }], 1, FENCED);
  assert.equal(step.kind, "write");
  assert.equal(
    c.core.failed((step as { transition: Transition }).transition).reply?.code,
    ErrorCode.NOT_COORDINATOR,
  );
  assert.equal(c.core.describe(ID)?.state, "Empty");
  // A new id whose first write failed is forgotten.
  const other = c.core.initProducerId("app-2", 10_000, null, 5n, 0, 5);
  c.core.failed((other as { transition: Transition }).transition);
  assert.equal(c.core.describe("app-2"), undefined);
});

Deno.test("KIP-360: a producer recovering with an id whose state expired gets a fresh producer id", () => {
  const c = loaded();
  const step = c.core.initProducerId(
    "expired",
    10_000,
    { producerId: 77n, producerEpoch: 3 },
    200n,
    0,
    5,
  );
  assert.equal(step.kind, "write");
  assert.deepEqual(persist(c, step).reply, {
    code: ErrorCode.NONE,
    producerId: 200n,
    producerEpoch: 0,
  });
  // A stale incarnation of another producer id is fenced once the id is known.
  assert.deepEqual(
    c.core.initProducerId("expired", 10_000, { producerId: 77n, producerEpoch: 3 }, null, 1, 5),
    { kind: "reply", code: FENCED },
  );
});
