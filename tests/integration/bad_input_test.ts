/**
 * Malformed input affects only the connection that sent it (I7): each case below is
 * followed by a normal request on another connection, and the stored data is checked
 * to be untouched.
 */
import assert from "node:assert/strict";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, encodeRequestFrame, ErrorCode } from "../../lib/protocol/mod.ts";
import { startTestNode, type TestNode } from "../_helpers/in_process_node.ts";
import { buildBatch } from "../unit/log/_batches.ts";

async function produceOne(conn: KafkaConnection, topic: string, value: string) {
  const res = await conn.request(ApiKey.Produce, 7, {
    acks: -1,
    timeoutMs: 5000,
    topicData: [{
      name: topic,
      partitionData: [{ index: 0, records: buildBatch({ records: [{ value }] }) }],
    }],
  });
  return res.responses[0]!.partitionResponses[0]!;
}

/** Opens a raw connection, sends `bytes`, optionally half-closes, and resolves when the broker closes it. */
async function sendRaw(port: number, bytes: Uint8Array, closeWrite = false): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes);
    if (closeWrite) await conn.closeWrite();
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let pos = 0;
    for (const c of chunks) {
      out.set(c, pos);
      pos += c.length;
    }
    return out;
  } finally {
    conn.close();
  }
}

function frame(size: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setInt32(0, size);
  out.set(payload, 4);
  return out;
}

/** The healthy client still works and sees exactly `expected` records in "keep". */
async function assertHealthy(node: TestNode, expected: number): Promise<void> {
  const conn = await node.connect();
  const res = await conn.request(ApiKey.ListOffsets, 5, {
    replicaId: -1,
    topics: [{ name: "keep", partitions: [{ partitionIndex: 0, timestamp: -1n }] }],
  });
  assert.equal(res.topics[0]!.partitions[0]!.errorCode, ErrorCode.NONE);
  assert.equal(res.topics[0]!.partitions[0]!.offset, BigInt(expected));
}

Deno.test("bad input: each malformed request closes only its connection and loses nothing", async (t) => {
  await using node = await startTestNode();
  const healthy = await node.connect();
  assert.equal((await produceOne(healthy, "keep", "a")).errorCode, ErrorCode.NONE);
  const metadataV4 = encodeRequestFrame(ApiKey.Metadata, 4, { correlationId: 7, clientId: "t" }, {
    topics: null,
  });

  await t.step("garbage bytes (an HTTP request) close the connection", async () => {
    const reply = await sendRaw(
      node.port,
      new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    assert.equal(reply.length, 0);
    await assertHealthy(node, 1);
  });

  await t.step(
    "a length prefix over --max-request-bytes is refused before allocation",
    async () => {
      const reply = await sendRaw(node.port, frame(200 * 1024 * 1024, new Uint8Array(16)));
      assert.equal(reply.length, 0);
      await assertHealthy(node, 1);
    },
  );

  await t.step("a negative length prefix closes the connection", async () => {
    assert.equal((await sendRaw(node.port, frame(-5, new Uint8Array(0)))).length, 0);
    await assertHealthy(node, 1);
  });

  await t.step("a truncated frame (stream ends inside it) closes the connection", async () => {
    const truncated = metadataV4.subarray(0, metadataV4.length - 3);
    assert.equal((await sendRaw(node.port, truncated, true)).length, 0);
    await assertHealthy(node, 1);
  });

  await t.step("an unknown API key closes the connection", async () => {
    const payload = new Uint8Array(12);
    new DataView(payload.buffer).setInt16(0, 9999);
    assert.equal((await sendRaw(node.port, frame(payload.length, payload))).length, 0);
    await assertHealthy(node, 1);
  });

  await t.step(
    "an unparsable body closes the connection, earlier replies still arrive",
    async () => {
      const bad = new Uint8Array(metadataV4);
      new DataView(bad.buffer).setInt32(bad.length - 4, 0x7fffffff); // topic array length: absurd
      const both = new Uint8Array(metadataV4.length + bad.length);
      both.set(metadataV4);
      both.set(bad, metadataV4.length);
      const reply = await sendRaw(node.port, both);
      // Exactly the first (valid) request's response, then the close.
      const size = new DataView(reply.buffer).getInt32(0);
      assert.equal(reply.length, 4 + size);
      assert.equal(
        new DataView(reply.buffer).getInt32(4),
        7,
        "correlation id of the valid request",
      );
      await assertHealthy(node, 1);
    },
  );

  await t.step(
    "a corrupt batch gets CORRUPT_MESSAGE for its partition only and writes nothing",
    async () => {
      const good = buildBatch({ records: [{ value: "b" }] });
      const bad = buildBatch({ records: [{ value: "c" }] });
      bad[bad.length - 1]! ^= 0xff; // breaks the CRC
      const res = await healthy.request(ApiKey.Produce, 7, {
        acks: 1,
        timeoutMs: 5000,
        topicData: [
          { name: "keep", partitionData: [{ index: 0, records: bad }] },
          { name: "other", partitionData: [{ index: 0, records: good }] },
        ],
      });
      assert.equal(res.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.CORRUPT_MESSAGE);
      assert.equal(res.responses[1]!.partitionResponses[0]!.errorCode, ErrorCode.NONE);
      await assertHealthy(node, 1);
    },
  );

  await t.step("a batch with a wrong record count or magic is CORRUPT_MESSAGE", async () => {
    const wrongCount = buildBatch({ records: [{ value: "x" }, { value: "y" }] });
    new DataView(wrongCount.buffer).setInt32(57, 3); // recordCount (CRC now also wrong)
    const oldMagic = buildBatch({ records: [{ value: "x" }] });
    oldMagic[16] = 1;
    for (const records of [wrongCount, oldMagic, new Uint8Array(30)]) {
      const res = await healthy.request(ApiKey.Produce, 7, {
        acks: 1,
        timeoutMs: 5000,
        topicData: [{ name: "keep", partitionData: [{ index: 0, records }] }],
      });
      assert.equal(res.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.CORRUPT_MESSAGE);
    }
    await assertHealthy(node, 1);
  });

  await t.step("a batch over max.message.bytes gets MESSAGE_TOO_LARGE", async () => {
    const create = await healthy.request(ApiKey.CreateTopics, 4, {
      topics: [{
        name: "small",
        numPartitions: 1,
        replicationFactor: 1,
        configs: [{ name: "max.message.bytes", value: "200" }],
      }],
      timeoutMs: 5000,
    });
    assert.equal(create.topics[0]!.errorCode, ErrorCode.NONE);
    const res = await healthy.request(ApiKey.Produce, 7, {
      acks: 1,
      timeoutMs: 5000,
      topicData: [{
        name: "small",
        partitionData: [{
          index: 0,
          records: buildBatch({ records: [{ value: "z".repeat(300) }] }),
        }],
      }],
    });
    assert.equal(res.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.MESSAGE_TOO_LARGE);
  });

  await t.step(
    "ApiVersions at an unknown version gets the v0 answer with UNSUPPORTED_VERSION",
    async () => {
      const req = encodeRequestFrame(ApiKey.ApiVersions, 3, { correlationId: 42, clientId: "t" }, {
        clientSoftwareName: "x",
        clientSoftwareVersion: "1",
      });
      new DataView(req.buffer).setInt16(6, 99); // apiVersion field of the header
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: node.port });
      await conn.write(req);
      const buf = new Uint8Array(4096);
      let n = 0;
      while (n < 4 || n < 4 + new DataView(buf.buffer).getInt32(0)) {
        n += (await conn.read(buf.subarray(n)))!;
      }
      conn.close();
      const v = new DataView(buf.buffer);
      assert.equal(v.getInt32(4), 42);
      assert.equal(v.getInt16(8), ErrorCode.UNSUPPORTED_VERSION);
      assert.ok(v.getInt32(10) >= 10, "our API ranges are listed");
    },
  );

  await t.step("Produce v2 (not served) gets UNSUPPORTED_VERSION", async () => {
    const conn = await node.connect();
    const res = await conn.request(ApiKey.Produce, 2, {
      acks: 1,
      timeoutMs: 1000,
      topicData: [{ name: "keep", partitionData: [{ index: 0, records: new Uint8Array(0) }] }],
    });
    assert.equal(res.responses[0]!.partitionResponses[0]!.errorCode, ErrorCode.UNSUPPORTED_VERSION);
    await assertHealthy(node, 1);
  });

  await t.step("the first connection never noticed any of it", async () => {
    assert.equal((await produceOne(healthy, "keep", "d")).errorCode, ErrorCode.NONE);
    await assertHealthy(node, 2);
  });
});
