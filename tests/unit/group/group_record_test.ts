import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeGroupRecord,
  encodeGroupRecord,
  groupPartition,
  type GroupRecord,
  GroupRecordDecodeError,
  javaStringHashCode,
} from "../../../lib/group/mod.ts";

const seedEnv = Deno.env.get("GROUP_PROP_SEED");
const seed = seedEnv === undefined ? undefined : Number(seedEnv);

const str = fc.string({ unit: "grapheme", maxLength: 20 });
const i32 = fc.integer({ min: -2147483648, max: 2147483647 });
const ts = fc.integer({ min: -1, max: 2 ** 50 });
const bytes = fc.uint8Array({ maxLength: 40 });

// Plain objects (fast-check may generate null-prototype ones, which deepEqual tells apart).
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

const recordArb: fc.Arbitrary<GroupRecord> = fc.oneof(
  rec({
    kind: fc.constant("offset" as const),
    groupId: str,
    topic: str,
    partition: i32,
    offset: fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER }),
    leaderEpoch: i32,
    // The coordinator commits "" for no metadata (as Kafka); Kafka's schema has no null.
    metadata: str,
    commitTimestampMs: ts,
    expireTimestampMs: fc.option(fc.integer({ min: 0, max: 2 ** 50 }), { nil: null }),
  }),
  rec({
    kind: fc.constant("offset-tombstone" as const),
    groupId: str,
    topic: str,
    partition: i32,
  }),
  rec({
    kind: fc.constant("group" as const),
    groupId: str,
    // Kafka stores a missing protocol type as "", read back as none.
    protocolType: fc.option(str.filter((t) => t !== ""), { nil: null }),
    protocolName: fc.option(str, { nil: null }),
    generationId: i32,
    leaderId: fc.option(str, { nil: null }),
    stateTimestampMs: ts,
    members: fc.array(
      rec({
        memberId: str,
        groupInstanceId: fc.option(str, { nil: null }),
        clientId: str,
        clientHost: str,
        rebalanceTimeoutMs: i32,
        sessionTimeoutMs: i32,
        subscription: bytes,
        assignment: bytes,
      }),
      { maxLength: 4 },
    ),
  }),
  rec({ kind: fc.constant("group-tombstone" as const), groupId: str }),
);

Deno.test("encodeGroupRecord()/decodeGroupRecord() round-trip every record exactly", () => {
  fc.assert(
    fc.property(recordArb, (r) => {
      const { key, value } = encodeGroupRecord(r);
      const tombstone = r.kind === "offset-tombstone" || r.kind === "group-tombstone";
      assert.equal(value === null, tombstone);
      // OffsetCommitValue v1 (the one with an expire timestamp) has no leader epoch.
      const expected = r.kind === "offset" && r.expireTimestampMs !== null
        ? { ...r, leaderEpoch: -1 }
        : r;
      assert.deepEqual(decodeGroupRecord(key, value), expected);
    }),
    { seed, numRuns: 500 },
  );
});

Deno.test("group records are Kafka's: OffsetCommitKey v1 + OffsetCommitValue v3, GroupMetadataValue v3", () => {
  const { key, value } = encodeGroupRecord({
    kind: "offset",
    groupId: "g",
    topic: "t",
    partition: 2,
    offset: 5,
    leaderEpoch: 1,
    metadata: "m",
    commitTimestampMs: 7,
    expireTimestampMs: null,
  });
  assert.deepEqual([...key], [0, 1, 0, 1, 0x67, 0, 1, 0x74, 0, 0, 0, 2]);
  assert.deepEqual([...value!], [
    0,
    3, // version
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    5, // offset
    0,
    0,
    0,
    1, // leader epoch
    0,
    1,
    0x6d, // metadata
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    7, // commit timestamp
  ]);
  const group = encodeGroupRecord({
    kind: "group",
    groupId: "g",
    protocolType: "consumer",
    protocolName: null,
    generationId: 0,
    leaderId: null,
    stateTimestampMs: 9,
    members: [],
  });
  assert.deepEqual([...group.key], [0, 2, 0, 1, 0x67]);
  assert.deepEqual([...group.value!], [
    0,
    3,
    0,
    8,
    ...new TextEncoder().encode("consumer"),
    0,
    0,
    0,
    0, // generation
    0xff,
    0xff, // protocol: null
    0xff,
    0xff, // leader: null
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    9, // current state timestamp
    0,
    0,
    0,
    0, // no members
  ]);
});

Deno.test("values in Tidelog's earlier layout (version 0) still load", () => {
  const key =
    encodeGroupRecord({ kind: "offset-tombstone", groupId: "g", topic: "t", partition: 0 })
      .key;
  // version 0 | offset 9 | leader epoch 4 | compact metadata "ab" | commit 11 | expire: none
  const legacy = new Uint8Array([
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    9,
    0,
    0,
    0,
    4,
    3,
    0x61,
    0x62,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    11,
    0,
  ]);
  assert.deepEqual(decodeGroupRecord(key, legacy), {
    kind: "offset",
    groupId: "g",
    topic: "t",
    partition: 0,
    offset: 9,
    leaderEpoch: 4,
    metadata: "ab",
    commitTimestampMs: 11,
    expireTimestampMs: null,
  });
});

Deno.test("decodeGroupRecord() copies byte fields out of the input buffers", () => {
  const r: GroupRecord = {
    kind: "group",
    groupId: "g",
    protocolType: "consumer",
    protocolName: "range",
    generationId: 3,
    leaderId: "m",
    stateTimestampMs: 5,
    members: [{
      memberId: "m",
      groupInstanceId: null,
      clientId: "c",
      clientHost: "h",
      rebalanceTimeoutMs: 1,
      sessionTimeoutMs: 2,
      subscription: new Uint8Array([1, 2]),
      assignment: new Uint8Array([3]),
    }],
  };
  const { key, value } = encodeGroupRecord(r);
  const decoded = decodeGroupRecord(key, value);
  value!.fill(0);
  assert.deepEqual(decoded, r);
});

Deno.test("decodeGroupRecord() throws GroupRecordDecodeError on garbage", async (t) => {
  const offset = encodeGroupRecord({
    kind: "offset",
    groupId: "g",
    topic: "t",
    partition: 0,
    offset: 5,
    leaderEpoch: 1,
    metadata: "",
    commitTimestampMs: 1,
    expireTimestampMs: null,
  });
  const group = encodeGroupRecord({ kind: "group-tombstone", groupId: "g" });
  const cases: [string, Uint8Array, Uint8Array | null][] = [
    ["empty key", new Uint8Array(0), null],
    ["unknown key version", new Uint8Array([0, 9, 0, 1, 0x67]), null],
    ["truncated key", offset.key.subarray(0, offset.key.length - 1), offset.value],
    ["trailing key bytes", new Uint8Array([...group.key, 0]), null],
    ["truncated value", offset.key, offset.value!.subarray(0, 5)],
    ["trailing value bytes", offset.key, new Uint8Array([...offset.value!, 1])],
    ["unknown value version", offset.key, new Uint8Array([0, 7, ...offset.value!.subarray(2)])],
    ["group value on offset-shaped garbage", group.key, offset.value],
    [
      "unsafe offset",
      offset.key,
      (() => {
        const v = offset.value!.slice();
        v.set([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 2);
        return v;
      })(),
    ],
  ];
  for (const [name, key, value] of cases) {
    await t.step(name, () => {
      assert.throws(() => decodeGroupRecord(key, value), GroupRecordDecodeError);
    });
  }
  await t.step("random bytes never throw anything else", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 30 }),
        fc.option(fc.uint8Array({ maxLength: 60 })),
        (k, v) => {
          try {
            decodeGroupRecord(k, v);
          } catch (e) {
            assert.ok(e instanceof GroupRecordDecodeError, String(e));
          }
        },
      ),
      { seed, numRuns: 300 },
    );
  });
});

Deno.test("javaStringHashCode() matches Java's String.hashCode()", async (t) => {
  // Checked by hand (h = 31*h + c, int32) and against values Java prints.
  const cases: [string, number][] = [
    ["", 0],
    ["a", 97],
    ["ab", 97 * 31 + 98], // 3105
    ["abc", 96354],
    ["hello", 99162322],
    ["Hello World", -862545276],
    // The brief guessed -1227271620; Java's algorithm gives this (checked independently).
    ["my-group", -1906497762],
    ["polygenelubricants", -2147483648], // Integer.MIN_VALUE
    ["\u00e9t\u00e9", (0xe9 * 31 + 0x74) * 31 + 0xe9], // 227742: UTF-16 units, not UTF-8
    ["\u{1F600}", 0xd83d * 31 + 0xde00], // a surrogate pair counts as two units
  ];
  for (const [s, h] of cases) {
    await t.step(JSON.stringify(s), () => assert.equal(javaStringHashCode(s), h));
  }
});

Deno.test("groupPartition() is Kafka's abs(hashCode) % partitions", async (t) => {
  const cases: [string, number, number][] = [
    ["", 50, 0],
    ["a", 50, 97 % 50],
    ["my-group", 50, (-1906497762 & 0x7fffffff) % 50], // 0x8e5d271e & 0x7fffffff = 240985886, so 36
    ["polygenelubricants", 50, 0], // Utils.abs(MIN_VALUE) is 0, not MIN_VALUE
    ["Hello World", 7, (-862545276 & 0x7fffffff) % 7],
  ];
  for (const [g, n, p] of cases) {
    await t.step(`${JSON.stringify(g)} of ${n}`, () => assert.equal(groupPartition(g, n), p));
  }
  await t.step("rejects a non-positive partition count", () => {
    assert.throws(() => groupPartition("g", 0), RangeError);
    assert.throws(() => groupPartition("g", 1.5), RangeError);
  });
  await t.step("always in range", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.integer({ min: 1, max: 1000 }), (g, n) => {
        const p = groupPartition(g, n);
        assert.ok(Number.isInteger(p) && p >= 0 && p < n);
      }),
      { seed },
    );
  });
});
