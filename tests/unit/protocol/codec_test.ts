import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ByteWriter,
  decodeMessage,
  encodeMessage,
  type MessageSchema,
  ProtocolDecodeError,
  SCHEMAS,
} from "../../../lib/protocol/mod.ts";
import { messageArb } from "./_arbitrary.ts";

const SEED = Number(Deno.env.get("PROTOCOL_SEED") ?? Date.now() % 2 ** 31);
const RUNS = Number(Deno.env.get("PROTOCOL_RUNS") ?? 25);

function versions(s: MessageSchema): number[] {
  const out: number[] = [];
  for (let v = s.validVersions[0]; v <= s.validVersions[1]; v++) out.push(v);
  return out;
}

function encode(s: MessageSchema, v: number, value: object): Uint8Array {
  return encodeMessage(s, v, value).finish();
}

Deno.test(`codec: round-trips every schema at every version (PROTOCOL_SEED=${SEED})`, async (t) => {
  for (const kind of ["request", "response", "data"] as const) {
    await t.step(kind, () => {
      for (const s of SCHEMAS.filter((x) => x.type === kind)) {
        for (const v of versions(s)) {
          try {
            fc.assert(
              fc.property(messageArb(s, v), (value) => {
                const bytes = encode(s, v, value);
                const back = decodeMessage(s, v, bytes);
                assert.deepStrictEqual(back, value);
                assert.deepStrictEqual(encode(s, v, back), bytes);
              }),
              { seed: SEED, numRuns: RUNS },
            );
          } catch (e) {
            throw new Error(`${s.name} v${v} failed (PROTOCOL_SEED=${SEED})`, { cause: e });
          }
        }
      }
    });
  }
});

Deno.test("codec: encoding {} gives a decodable all-defaults message for every schema and version", () => {
  for (const s of SCHEMAS) {
    for (const v of versions(s)) {
      const bytes = encode(s, v, {});
      const back = decodeMessage(s, v, bytes);
      assert.deepStrictEqual(encode(s, v, back), bytes, `${s.name} v${v}`);
    }
  }
});

Deno.test("codec: every truncation of a valid message fails with ProtocolDecodeError", () => {
  for (const s of SCHEMAS) {
    for (const v of versions(s)) {
      const value = fc.sample(messageArb(s, v), { seed: SEED, numRuns: 1 })[0]!;
      const bytes = encode(s, v, value);
      for (let n = 0; n < bytes.length; n++) {
        assert.throws(() => decodeMessage(s, v, bytes.subarray(0, n)), ProtocolDecodeError);
      }
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      assert.throws(
        () => decodeMessage(s, v, longer),
        (e: unknown) => e instanceof ProtocolDecodeError && /trailing/.test(e.message),
      );
    }
  }
});

Deno.test("codec: random garbage only ever fails with ProtocolDecodeError", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...SCHEMAS),
      fc.nat(),
      fc.uint8Array({ maxLength: 80 }),
      (s, vi, bytes) => {
        const v = s.validVersions[0] + (vi % (s.validVersions[1] - s.validVersions[0] + 1));
        try {
          decodeMessage(s, v, bytes);
        } catch (e) {
          if (!(e instanceof ProtocolDecodeError)) throw e;
        }
      },
    ),
    { seed: SEED, numRuns: 20000 },
  );
});

const produce = SCHEMAS.find((s) => s.name === "ProduceRequest")!;
const fetchResponse = SCHEMAS.find((s) => s.name === "FetchResponse")!;
const metadataResponse = SCHEMAS.find((s) => s.name === "MetadataResponse")!;
const apiVersionsResponse = SCHEMAS.find((s) => s.name === "ApiVersionsResponse")!;

Deno.test("codec: huge claimed lengths fail before allocating", async (t) => {
  await t.step("non-flexible array of 2^31-1 topics", () => {
    const w = new ByteWriter();
    w.string(null); // transactionalId
    w.int16(1);
    w.int32(1000);
    w.int32(0x7fffffff); // topicData count
    const started = performance.now();
    assert.throws(
      () => decodeMessage(produce, 3, w.finish()),
      (e: unknown) => e instanceof ProtocolDecodeError && /2147483647 items/.test(e.message),
    );
    assert.ok(performance.now() - started < 1000);
  });
  await t.step("compact array of 2^32-2 topics", () => {
    const w = new ByteWriter();
    w.compactString(null);
    w.int16(1);
    w.int32(1000);
    w.uvarint(0xffffffff);
    assert.throws(() => decodeMessage(produce, 9, w.finish()), ProtocolDecodeError);
  });
  await t.step("records of 2^31-1 bytes", () => {
    const w = new ByteWriter();
    w.string(null);
    w.int16(1);
    w.int32(1000);
    w.int32(1);
    w.string("t");
    w.int32(1);
    w.int32(0);
    w.int32(0x7fffffff);
    w.raw(new Uint8Array(10));
    assert.throws(() => decodeMessage(produce, 3, w.finish()), ProtocolDecodeError);
  });
  await t.step("negative array length other than -1", () => {
    const w = new ByteWriter();
    w.string(null);
    w.int16(1);
    w.int32(1000);
    w.int32(-2);
    assert.throws(() => decodeMessage(produce, 3, w.finish()), /negative length/);
  });
  await t.step("null for a non-nullable array", () => {
    const w = new ByteWriter();
    w.string(null);
    w.int16(1);
    w.int32(1000);
    w.int32(-1);
    assert.throws(() => decodeMessage(produce, 3, w.finish()), ProtocolDecodeError);
  });
});

Deno.test("codec: missing fields take defaults; absent fields are skipped", async (t) => {
  await t.step("schema defaults fill a decoded message", () => {
    const bytes = encode(metadataResponse, 1, { brokers: [{ nodeId: 1, host: "h", port: 9 }] });
    const back = decodeMessage(metadataResponse, 1, bytes) as Record<string, unknown>;
    assert.equal(back.throttleTimeMs, 0); // absent in v1 → default
    assert.equal(back.clusterId, null); // absent in v1, default null
    assert.equal(back.controllerId, -1); // present in v1, not given → schema default -1
    assert.equal(back.clusterAuthorizedOperations, -2147483648);
    assert.deepStrictEqual(back.brokers, [{ nodeId: 1, host: "h", port: 9, rack: null }]);
  });
  await t.step("a field absent in the version is not written even if given", () => {
    const a = encode(metadataResponse, 1, { throttleTimeMs: 99 });
    const b = encode(metadataResponse, 1, {});
    assert.deepStrictEqual(a, b);
  });
  await t.step("null where the version forbids it is a TypeError", () => {
    assert.throws(() => encode(metadataResponse, 11, { topics: [{ name: null }] }), TypeError);
    encode(metadataResponse, 12, { topics: [{ name: null }] });
  });
  await t.step("a version outside validVersions is rejected", () => {
    assert.throws(() => encode(produce, 12, {}), RangeError);
    assert.throws(() => decodeMessage(produce, 12, new Uint8Array(0)), ProtocolDecodeError);
  });
});

Deno.test("codec: tagged fields", async (t) => {
  await t.step("known tags decode into properties and are omitted when default", () => {
    const plain = encode(apiVersionsResponse, 3, {});
    // errorCode(2) apiKeys(1) throttle(4) tagged count(1)
    assert.equal(plain.length, 8);
    const tagged = encode(apiVersionsResponse, 3, { finalizedFeaturesEpoch: 7n });
    const back = decodeMessage(apiVersionsResponse, 3, tagged) as Record<string, unknown>;
    assert.equal(back.finalizedFeaturesEpoch, 7n);
    assert.equal(back._unknownTaggedFields, undefined);
  });
  await t.step("unknown tags survive a round trip, sorted with known ones", () => {
    const unknown = [{ tag: 9, data: new Uint8Array([1, 2]) }];
    const bytes = encode(apiVersionsResponse, 3, {
      finalizedFeaturesEpoch: 1n,
      _unknownTaggedFields: unknown,
    });
    const back = decodeMessage(apiVersionsResponse, 3, bytes) as Record<string, unknown>;
    assert.deepStrictEqual(back._unknownTaggedFields, unknown);
    assert.deepStrictEqual(encode(apiVersionsResponse, 3, back), bytes);
  });
  await t.step("a tagged struct is written only when it differs from its default", () => {
    const base = { responses: [{ partitions: [{ partitionIndex: 0 }] }] };
    const a = encode(fetchResponse, 12, base);
    const b = encode(fetchResponse, 12, {
      responses: [{ partitions: [{ partitionIndex: 0, currentLeader: { leaderId: -1 } }] }],
    });
    assert.deepStrictEqual(a, b);
    const c = encode(fetchResponse, 12, {
      responses: [{ partitions: [{ partitionIndex: 0, currentLeader: { leaderId: 2 } }] }],
    });
    const back = decodeMessage(fetchResponse, 12, c) as {
      responses: { partitions: { currentLeader: unknown }[] }[];
    };
    assert.deepStrictEqual(back.responses[0]!.partitions[0]!.currentLeader, {
      leaderId: 2,
      leaderEpoch: -1,
    });
  });
  await t.step("a known tag with leftover bytes is rejected", () => {
    const w = new ByteWriter();
    w.int16(0);
    w.uvarint(1);
    w.int32(0);
    w.uvarint(1); // one tagged field
    w.uvarint(1); // tag 1: finalizedFeaturesEpoch (int64)
    w.uvarint(9);
    w.raw(new Uint8Array(9));
    assert.throws(() => decodeMessage(apiVersionsResponse, 3, w.finish()), /left over/);
  });
});

Deno.test("codec: records decode as zero-copy subarrays and encode without per-byte copies", () => {
  const records = new Uint8Array(64 * 1024).map((_, i) => i & 255);
  const bytes = encode(produce, 9, {
    acks: -1,
    topicData: [{ name: "t", partitionData: [{ index: 0, records }] }],
  });
  const back = decodeMessage(produce, 9, bytes) as {
    topicData: { partitionData: { records: Uint8Array }[] }[];
  };
  const got = back.topicData[0]!.partitionData[0]!.records;
  assert.equal(got.buffer, bytes.buffer);
  assert.deepStrictEqual(got, records);
});
