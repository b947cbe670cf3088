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
    metadata: fc.option(str, { nil: null }),
    commitTimestampMs: ts,
    expireTimestampMs: fc.option(ts, { nil: null }),
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
    protocolType: fc.option(str, { nil: null }),
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
      assert.deepEqual(decodeGroupRecord(key, value), r);
    }),
    { seed, numRuns: 500 },
  );
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
