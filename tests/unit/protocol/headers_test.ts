import assert from "node:assert/strict";
import {
  ApiKey,
  ByteWriter,
  decodeRequestBody,
  decodeRequestHeader,
  decodeResponseFrame,
  encodeRequestFrame,
  encodeResponseFrame,
  ProtocolDecodeError,
  requestHeaderVersion,
  responseHeaderVersion,
} from "../../../lib/protocol/mod.ts";

Deno.test("requestHeaderVersion() follows flexible versions, with ControlledShutdown v0 at v0", () => {
  assert.equal(requestHeaderVersion(ApiKey.Produce, 8), 1);
  assert.equal(requestHeaderVersion(ApiKey.Produce, 9), 2);
  assert.equal(requestHeaderVersion(ApiKey.Metadata, 8), 1);
  assert.equal(requestHeaderVersion(ApiKey.Metadata, 9), 2);
  assert.equal(requestHeaderVersion(ApiKey.ApiVersions, 2), 1);
  assert.equal(requestHeaderVersion(ApiKey.ApiVersions, 3), 2);
  // A newer ApiVersions than we know is still flexible (open-ended "3+").
  assert.equal(requestHeaderVersion(ApiKey.ApiVersions, 9), 2);
  assert.equal(requestHeaderVersion(ApiKey.ControlledShutdown, 0), 0);
  assert.equal(requestHeaderVersion(ApiKey.ControlledShutdown, 1), 1);
  assert.equal(requestHeaderVersion(9999, 0), 1);
});

Deno.test("responseHeaderVersion() is v0 for ApiVersions at every version", () => {
  assert.equal(responseHeaderVersion(ApiKey.Produce, 8), 0);
  assert.equal(responseHeaderVersion(ApiKey.Produce, 9), 1);
  assert.equal(responseHeaderVersion(ApiKey.Fetch, 12), 1);
  for (let v = 0; v <= 4; v++) assert.equal(responseHeaderVersion(ApiKey.ApiVersions, v), 0);
});

Deno.test("decodeRequestHeader() parses v0, v1 and v2 headers", async (t) => {
  await t.step("v1 (Produce v7)", () => {
    const w = new ByteWriter();
    w.int16(0);
    w.int16(7);
    w.int32(42);
    w.string("rdkafka");
    w.int8(99); // first body byte
    const { header, bodyOffset } = decodeRequestHeader(w.finish());
    assert.deepStrictEqual(header, {
      apiKey: 0,
      apiVersion: 7,
      correlationId: 42,
      clientId: "rdkafka",
    });
    assert.equal(bodyOffset, 8 + 2 + 7);
  });
  await t.step("v1 with a null client id", () => {
    const frame = new Uint8Array([0, 3, 0, 4, 0, 0, 0, 1, 0xff, 0xff]);
    const { header, bodyOffset } = decodeRequestHeader(frame);
    assert.equal(header.clientId, null);
    assert.equal(bodyOffset, 10);
  });
  await t.step("v2: client id stays a classic string, then tagged fields", () => {
    const w = new ByteWriter();
    w.int16(18);
    w.int16(3);
    w.int32(1);
    w.string("c");
    w.uvarint(1); // one unknown header tag
    w.uvarint(5);
    w.uvarint(2);
    w.int16(0);
    const { header, bodyOffset } = decodeRequestHeader(w.finish());
    assert.equal(header.clientId, "c");
    assert.equal(bodyOffset, 8 + 3 + 1 + 1 + 1 + 2);
  });
  await t.step("v0 (ControlledShutdown v0) has no client id", () => {
    const frame = new Uint8Array([0, 7, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1]);
    const { header, bodyOffset } = decodeRequestHeader(frame);
    assert.deepStrictEqual(header, { apiKey: 7, apiVersion: 0, correlationId: 5, clientId: null });
    assert.equal(bodyOffset, 8);
  });
  await t.step("an unknown API key gets a v1 header", () => {
    const frame = new Uint8Array([0x7f, 0, 0, 0, 0, 0, 0, 5, 0, 1, 120]);
    const { header, bodyOffset } = decodeRequestHeader(frame);
    assert.equal(header.apiKey, 0x7f00);
    assert.equal(header.clientId, "x");
    assert.equal(bodyOffset, 11);
  });
  await t.step("short input is a ProtocolDecodeError", () => {
    for (const n of [0, 3, 7, 9]) {
      const frame = new Uint8Array([0, 0, 0, 7, 0, 0, 0, 1, 0, 5, 97].slice(0, n));
      assert.throws(() => decodeRequestHeader(frame), ProtocolDecodeError);
    }
  });
});

Deno.test("encodeRequestFrame()/decodeRequestBody() round trip with the right header", () => {
  for (const v of [1, 4, 9, 12]) {
    const frame = encodeRequestFrame(ApiKey.Metadata, v, { correlationId: 3, clientId: "me" }, {
      topics: [{ name: "t1" }],
      allowAutoTopicCreation: true,
    });
    assert.equal(new DataView(frame.buffer, frame.byteOffset).getInt32(0), frame.length - 4);
    const { header, bodyOffset } = decodeRequestHeader(frame.subarray(4));
    assert.deepStrictEqual(header, { apiKey: 3, apiVersion: v, correlationId: 3, clientId: "me" });
    assert.equal(bodyOffset, 8 + 4 + (v >= 9 ? 1 : 0));
    const body = decodeRequestBody(ApiKey.Metadata, v, frame.subarray(4 + bodyOffset));
    assert.equal(body.topics![0]!.name, "t1");
  }
});

Deno.test("encodeResponseFrame(): ApiVersions uses response header v0 even when flexible", () => {
  const frame = encodeResponseFrame(ApiKey.ApiVersions, 3, 77, {
    apiKeys: [{ apiKey: 0, minVersion: 0, maxVersion: 11 }],
  });
  // size | correlation id | errorCode | compact array(1) | key, min, max | tags | throttle | tags
  assert.deepStrictEqual(
    [...frame],
    [0, 0, 0, 19, 0, 0, 0, 77, 0, 0, 2, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0],
  );
  const back = decodeResponseFrame(ApiKey.ApiVersions, 3, frame.subarray(4));
  assert.equal(back.correlationId, 77);
  assert.deepStrictEqual(back.body.apiKeys, [{ apiKey: 0, minVersion: 0, maxVersion: 11 }]);
});

Deno.test("encodeResponseFrame(): flexible responses get header v1 (empty tagged fields)", () => {
  const frame = encodeResponseFrame(ApiKey.Metadata, 9, 5, {});
  // size | correlation id | header tags (0) | body...
  assert.deepStrictEqual([...frame.subarray(4, 9)], [0, 0, 0, 5, 0]);
  const old = encodeResponseFrame(ApiKey.Metadata, 8, 5, {});
  // size, correlation id, throttle, brokers, clusterId (null), controller, topics, cluster ops
  assert.equal(old.length, 4 + 4 + 4 + 4 + 2 + 4 + 4 + 4);
  const back = decodeResponseFrame(ApiKey.Metadata, 9, frame.subarray(4));
  assert.equal(back.correlationId, 5);
  assert.equal(back.body.controllerId, -1);
});

Deno.test("encodeResponseFrame(): the UNSUPPORTED_VERSION answer to ApiVersions is a v0 body", () => {
  const frame = encodeResponseFrame(ApiKey.ApiVersions, 0, 1, {
    errorCode: 35,
    apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 4 }],
  });
  assert.deepStrictEqual(
    [...frame],
    [0, 0, 0, 16, 0, 0, 0, 1, 0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4],
  );
});
