/**
 * Decodes request frames captured from real clients (kcat and confluent_kafka on
 * librdkafka 2.0.2, kafkajs 2.2.4) by tests/fixtures/protocol/capture.ts.
 */

import assert from "node:assert/strict";
import {
  ApiKey,
  apiName,
  ByteReader,
  decodeData,
  decodeRequestBody,
  decodeRequestHeader,
  encodeRequestFrame,
  type RequestTypes,
  splitBatches,
  validateBatch,
} from "../../../lib/protocol/mod.ts";

const DIR = new URL("../../fixtures/protocol/", import.meta.url).pathname;

interface Entry {
  file: string;
  client: string;
  apiKey: number;
  apiName: string;
  apiVersion: number;
  variant?: string;
  correlationId: number;
  clientId: string | null;
}

const INDEX: Entry[] = JSON.parse(Deno.readTextFileSync(`${DIR}index.json`));

function load(e: Entry): Uint8Array {
  const hex = Deno.readTextFileSync(`${DIR}${e.file}`).trim();
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const CLIENT_IDS: Record<string, string> = {
  kcat: "kcat",
  "confluent-kafka-python": "confluent-kafka-python",
  kafkajs: "kafkajs",
};

/** A consumer-protocol blob: int16 version, then the versioned data. */
function consumerData<K extends "ConsumerProtocolSubscription" | "ConsumerProtocolAssignment">(
  name: K,
  bytes: Uint8Array,
) {
  const version = new ByteReader(bytes).int16();
  return decodeData(name, Math.min(version, 3), bytes.subarray(2));
}

// deno-lint-ignore no-explicit-any
type Any = any;

/** Known field values per API, checked for every client. */
const CHECKS: Partial<Record<number, (body: Any, e: Entry) => void>> = {
  [ApiKey.ApiVersions]: (b: RequestTypes[18], e) => {
    if (e.apiVersion >= 3) assert.match(b.clientSoftwareName, /librdkafka|confluent-kafka-python/);
  },
  [ApiKey.Metadata]: (b: RequestTypes[3], e) => {
    if (e.variant === "all-topics") assert.equal(b.topics, null);
    else assert.deepStrictEqual(b.topics?.map((t) => t.name), ["t1"]);
  },
  [ApiKey.Produce]: (b: RequestTypes[0], e) => {
    assert.equal(b.acks, -1);
    assert.equal(b.transactionalId, null);
    assert.equal(b.topicData[0]!.name, "t1");
    const p = b.topicData[0]!.partitionData[0]!;
    assert.equal(p.index, 0);
    const batches = splitBatches(p.records!);
    assert.ok(batches.length >= 1);
    for (const batch of batches) {
      const h = validateBatch(batch);
      assert.equal(h.magic, 2);
      assert.equal(h.producerId >= 0n, e.variant === "idempotent");
    }
  },
  [ApiKey.Fetch]: (b: RequestTypes[1]) => {
    assert.equal(b.replicaId, -1);
    assert.equal(b.topics[0]!.topic, "t1");
    assert.equal(b.topics[0]!.partitions[0]!.partition, 0);
    assert.equal(b.topics[0]!.partitions[0]!.fetchOffset, 0n);
  },
  [ApiKey.ListOffsets]: (b: RequestTypes[2], e) => {
    assert.equal(b.topics[0]!.name, "t1");
    // kcat and the consumers ask for the beginning (-2); kafkajs' fetchTopicOffsets the end (-1).
    assert.equal(b.topics[0]!.partitions[0]!.timestamp, e.client === "kafkajs" ? -1n : -2n);
  },
  [ApiKey.FindCoordinator]: (b: RequestTypes[10], e) => {
    assert.equal(b.key, e.client === "kafkajs" ? "g-kafkajs" : "g-python");
    assert.equal(b.keyType, 0);
  },
  [ApiKey.JoinGroup]: (b: RequestTypes[11]) => {
    assert.equal(b.protocolType, "consumer");
    assert.equal(b.memberId, "");
    for (const p of b.protocols) {
      const sub = consumerData("ConsumerProtocolSubscription", p.metadata);
      assert.deepStrictEqual(sub.topics, ["t1"]);
    }
  },
  [ApiKey.SyncGroup]: (b: RequestTypes[14]) => {
    assert.equal(b.assignments.length, 1);
    const a = consumerData("ConsumerProtocolAssignment", b.assignments[0]!.assignment);
    assert.deepStrictEqual(a.assignedPartitions.map((t) => [t.topic, t.partitions]), [["t1", [0]]]);
  },
  [ApiKey.OffsetCommit]: (b: RequestTypes[8]) => {
    assert.equal(b.topics[0]!.name, "t1");
    assert.equal(b.topics[0]!.partitions[0]!.committedOffset >= 1n, true);
  },
  [ApiKey.OffsetFetch]: (b: RequestTypes[9]) => {
    assert.deepStrictEqual(b.topics?.map((t) => t.name), ["t1"]);
  },
  [ApiKey.CreateTopics]: (b: RequestTypes[19]) => {
    assert.equal(b.topics[0]!.name, "t2");
    assert.equal(b.topics[0]!.numPartitions, 1);
  },
  [ApiKey.DeleteTopics]: (b: RequestTypes[20]) => {
    assert.deepStrictEqual(b.topicNames, ["t2"]);
  },
  [ApiKey.CreatePartitions]: (b: RequestTypes[37]) => {
    assert.equal(b.topics[0]!.name, "t1");
    assert.equal(b.topics[0]!.count, 2);
  },
  [ApiKey.DescribeConfigs]: (b: RequestTypes[32]) => {
    assert.equal(b.resources[0]!.resourceName, "t1");
    assert.equal(b.resources[0]!.resourceType, 2);
  },
  [ApiKey.InitProducerId]: (b: RequestTypes[22]) => {
    assert.equal(b.transactionalId, null);
  },
};

Deno.test("fixtures: the index covers the required clients and APIs", () => {
  const has = (client: string, api: number) =>
    INDEX.some((e) => e.client === client && e.apiKey === api);
  for (const client of ["kcat", "confluent-kafka-python", "kafkajs"]) {
    for (const api of [ApiKey.ApiVersions, ApiKey.Metadata, ApiKey.Produce, ApiKey.Fetch]) {
      assert.ok(has(client, api), `${client} ${apiName(api)}`);
    }
  }
});

Deno.test("fixtures: real client request frames decode, check out and re-encode identically", async (t) => {
  for (const e of INDEX) {
    await t.step(
      `${e.client} ${e.apiName} v${e.apiVersion}${e.variant ? ` (${e.variant})` : ""}`,
      () => {
        const frame = load(e);
        const { header, bodyOffset } = decodeRequestHeader(frame);
        assert.deepStrictEqual(header, {
          apiKey: e.apiKey,
          apiVersion: e.apiVersion,
          correlationId: e.correlationId,
          clientId: CLIENT_IDS[e.client],
        });
        // decodeRequestBody throws on trailing bytes.
        const body = decodeRequestBody(e.apiKey as 0, e.apiVersion, frame.subarray(bodyOffset));
        CHECKS[e.apiKey]?.(body, e);
        // All these encodings are canonical (no unknown tags, minimal varints).
        const again = encodeRequestFrame(e.apiKey as 0, e.apiVersion, header, body);
        assert.deepStrictEqual(again.subarray(4), frame);
      },
    );
  }
});
