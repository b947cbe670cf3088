/**
 * Committed offsets become visible only once their commit record is durable (Kafka's
 * GroupMetadata.pendingOffsetCommits, materialized by onOffsetCommitAppend): an
 * OffsetFetch while the append is in flight answers the previous offset, and a failed
 * append leaves no trace.
 */
import assert from "node:assert/strict";
import { ApiKey, ErrorCode, type OffsetFetchResponse } from "../../../lib/protocol/mod.ts";
import { Harness, request } from "./_harness.ts";

function fetch(h: Harness, requireStable: boolean): string[] {
  const r = h.core.offsetFetch(
    request(ApiKey.OffsetFetch, 7, {
      groupId: "g",
      topics: [{ name: "t", partitionIndexes: [0] }],
      requireStable,
    }),
    7,
  ) as OffsetFetchResponse;
  return r.topics.flatMap((t) =>
    t.partitions.map((p) => `${t.name}-${p.partitionIndex}=${p.committedOffset}:${p.errorCode}`)
  );
}

Deno.test("GroupCoordinator: an offset commit is invisible to OffsetFetch until its append completes", async (t) => {
  const h = new Harness();
  h.holdAppends = true;
  const commit = (offset: number) =>
    Harness.commitCodes(h.commit({ offsets: [{ topic: "t", partition: 0, offset }] }));

  await t.step("in flight: nothing is committed yet", () => {
    assert.deepEqual(commit(5), ["t-0:0"]);
    assert.equal(h.held.length, 1);
    assert.deepEqual(h.fetchAll(), []);
    assert.deepEqual(fetch(h, false), ["t-0=-1:0"]);
  });
  await t.step("durable: visible", () => {
    h.completeAppend();
    assert.deepEqual(h.fetchAll(), ["t-0=5"]);
  });
  await t.step("a newer commit in flight leaves the durable one visible", () => {
    commit(7);
    assert.deepEqual(fetch(h, false), ["t-0=5:0"]);
  });
  await t.step("requireStable (KIP-447) gets UNSTABLE_OFFSET_COMMIT while one is pending", () => {
    assert.deepEqual(fetch(h, true), [`t-0=-1:${ErrorCode.UNSTABLE_OFFSET_COMMIT}`]);
  });
  await t.step("a failed append never becomes visible", () => {
    h.failAppend();
    assert.deepEqual(fetch(h, true), ["t-0=5:0"]);
    assert.deepEqual(h.fetchAll(), ["t-0=5"]);
  });
  await t.step("appends completing out of order keep the newest commit", () => {
    commit(8);
    commit(9);
    const [first, second] = h.held;
    h.completeAppend(second);
    assert.deepEqual(h.fetchAll(), ["t-0=9"]);
    h.completeAppend(first);
    assert.deepEqual(h.fetchAll(), ["t-0=9"]);
  });
  await t.step("an offset deleted while its commit is in flight stays deleted", () => {
    commit(10);
    const out = h.held[0]!;
    assert.deepEqual(h.offsetDelete("g", [{ topic: "t", partitions: [0] }]).errorCode, 0);
    // The tombstone is an append of its own.
    h.completeAppend(h.held[1]!);
    h.completeAppend(out);
    assert.deepEqual(h.fetchAll(), []);
  });
});

Deno.test("GroupCoordinator: a group created by a commit whose append fails is forgotten", () => {
  const h = new Harness();
  h.holdAppends = true;
  h.commit({ groupId: "lost", offsets: [{ topic: "t", partition: 0, offset: 1 }] });
  assert.deepEqual(h.fetchAll("lost"), []);
  h.failAppend();
  assert.equal(h.core.group("lost"), undefined);
  assert.deepEqual(h.core.groupIds(), []);
});

Deno.test("GroupCoordinator: offsets with a commit in flight are not expired and are tombstoned by DeleteGroups", () => {
  const h = new Harness();
  h.commit({ offsets: [{ topic: "t", partition: 0, offset: 1 }] });
  h.holdAppends = true;
  h.commit({ offsets: [{ topic: "t", partition: 1, offset: 2 }] });
  const deleted = h.deleteGroups(["g"]);
  assert.deepEqual(deleted.results.map((r) => r.errorCode), [0]);
  const tombstones = h.last.records.filter((r) => r.kind === "offset-tombstone")
    .map((r) => `${r.topic}-${r.partition}`);
  assert.deepEqual(tombstones.sort(), ["t-0", "t-1"]);
  h.completeAppend(h.held[0]!);
  assert.deepEqual(h.fetchAll(), []);
  assert.equal(h.core.group("g"), undefined);
});
