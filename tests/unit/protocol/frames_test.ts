import assert from "node:assert/strict";
import {
  ApiKey,
  apiKeys,
  decodeData,
  decodeRequestBody,
  decodeResponseBody,
  decodeResponseFrame,
  type DeepPartial,
  encodeData,
  encodeRequestBody,
  encodeResponseBody,
  encodeResponseFrame,
  type FetchResponse,
  type MetadataResponse,
  type ProduceRequestTopicProduceData,
  ProtocolDecodeError,
  schemaVersionRange,
} from "../../../lib/protocol/mod.ts";

Deno.test("encodeResponseFrame() accepts a full decoded value and a deep partial one", () => {
  const full: MetadataResponse = decodeResponseBody(
    ApiKey.Metadata,
    12,
    encodeResponseBody(ApiKey.Metadata, 12, { brokers: [{ nodeId: 1, host: "h", port: 1 }] }),
  );
  const partial: DeepPartial<MetadataResponse> = { topics: [{ name: "t", partitions: [{}] }] };
  const a = encodeResponseFrame(ApiKey.Metadata, 12, 1, full);
  const b = encodeResponseFrame(ApiKey.Metadata, 12, 1, partial);
  assert.equal(decodeResponseFrame(ApiKey.Metadata, 12, a.subarray(4)).body.brokers[0]!.host, "h");
  const back = decodeResponseFrame(ApiKey.Metadata, 12, b.subarray(4)).body;
  assert.deepStrictEqual(back.topics[0]!.partitions[0], {
    errorCode: 0,
    partitionIndex: 0,
    leaderId: 0,
    leaderEpoch: -1,
    replicaNodes: [],
    isrNodes: [],
    offlineReplicas: [],
  });
});

Deno.test("decodeRequestBody() types follow the API key", () => {
  const topic: DeepPartial<ProduceRequestTopicProduceData> = {
    name: "t",
    partitionData: [{ index: 3, records: null }],
  };
  const bytes = encodeRequestBody(ApiKey.Produce, 8, { acks: 1, topicData: [topic] });
  const body = decodeRequestBody(ApiKey.Produce, 8, bytes);
  const records: Uint8Array | null = body.topicData[0]!.partitionData[0]!.records;
  assert.equal(records, null);
  assert.equal(body.acks, 1);
});

Deno.test("decodeRequestBody() rejects unknown keys and versions with ProtocolDecodeError", () => {
  assert.throws(
    () => decodeRequestBody(999 as 0, 0, new Uint8Array(0)),
    ProtocolDecodeError,
  );
  assert.throws(
    () => decodeRequestBody(ApiKey.Produce, 99, new Uint8Array(0)),
    ProtocolDecodeError,
  );
  assert.throws(() => encodeResponseFrame(999 as 0, 0, 1, {}), RangeError);
});

Deno.test("decodeResponseFrame() with a short frame is a ProtocolDecodeError", () => {
  assert.throws(
    () => decodeResponseFrame(ApiKey.Fetch, 12, new Uint8Array([0, 0, 0])),
    ProtocolDecodeError,
  );
});

Deno.test("Fetch response records: null, empty and data", () => {
  for (const v of [4, 11, 12, 16]) {
    const body: DeepPartial<FetchResponse> = {
      responses: [{
        topic: "t",
        topicId: "AAAAAAAAAAAAAAAAAAAAAQ",
        partitions: [
          { partitionIndex: 0, records: null },
          { partitionIndex: 1, records: new Uint8Array(0) },
          { partitionIndex: 2, records: new Uint8Array([1, 2, 3]) },
        ],
      }],
    };
    const back = decodeResponseBody(ApiKey.Fetch, v, encodeResponseBody(ApiKey.Fetch, v, body));
    const parts = back.responses[0]!.partitions;
    assert.equal(parts[0]!.records, null);
    assert.deepStrictEqual(parts[1]!.records, new Uint8Array(0));
    assert.deepStrictEqual(parts[2]!.records, new Uint8Array([1, 2, 3]));
    assert.equal(back.responses[0]!.topic, v < 13 ? "t" : "");
  }
});

Deno.test("encodeData()/decodeData(): consumer protocol assignment", () => {
  const bytes = encodeData("ConsumerProtocolAssignment", 0, {
    assignedPartitions: [{ topic: "t1", partitions: [0, 2] }],
    userData: null,
  });
  const back = decodeData("ConsumerProtocolAssignment", 0, bytes);
  assert.deepStrictEqual(back.assignedPartitions, [{ topic: "t1", partitions: [0, 2] }]);
  assert.equal(back.userData, null);
});

Deno.test("apiKeys() lists every API with a version range", () => {
  const keys = apiKeys();
  assert.ok(keys.length >= 80);
  for (const k of keys) assert.ok(schemaVersionRange(k) !== undefined);
});
