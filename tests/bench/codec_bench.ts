/**
 * Micro-benchmarks of the generic codec on the hot paths: Produce request decode and
 * Fetch response encode with 64 KiB–1 MiB record payloads.
 *
 *     deno bench -A tests/bench/codec_bench.ts
 */

import {
  ApiKey,
  decodeRequestBody,
  decodeRequestHeader,
  decodeResponseFrame,
  encodeRequestFrame,
  encodeResponseFrame,
} from "../../lib/protocol/mod.ts";

const MiB = 1024 * 1024;
const oneMiB = new Uint8Array(MiB).fill(1);
const sixteen64k = Array.from({ length: 16 }, () => new Uint8Array(64 * 1024).fill(2));

function produceFrame(version: number, parts: Uint8Array[]): Uint8Array {
  return encodeRequestFrame(ApiKey.Produce, version, { correlationId: 1, clientId: "bench" }, {
    acks: -1,
    timeoutMs: 30000,
    topicData: [{
      name: "bench-topic",
      partitionData: parts.map((records, index) => ({ index, records })),
    }],
  });
}

const produceV7 = produceFrame(7, [oneMiB]).subarray(4);
const produceV9 = produceFrame(9, sixteen64k).subarray(4);

function fetchBody(parts: Uint8Array[]) {
  return {
    responses: [{
      topic: "bench-topic",
      partitions: parts.map((records, partitionIndex) => ({
        partitionIndex,
        highWatermark: 1000n,
        lastStableOffset: 1000n,
        logStartOffset: 0n,
        records,
      })),
    }],
  };
}

Deno.bench("decode Produce v7 request, 1 x 1 MiB", { group: "produce" }, () => {
  const { header, bodyOffset } = decodeRequestHeader(produceV7);
  decodeRequestBody(ApiKey.Produce, header.apiVersion, produceV7.subarray(bodyOffset));
});

Deno.bench("decode Produce v9 request, 16 x 64 KiB", { group: "produce" }, () => {
  const { header, bodyOffset } = decodeRequestHeader(produceV9);
  decodeRequestBody(ApiKey.Produce, header.apiVersion, produceV9.subarray(bodyOffset));
});

Deno.bench("encode Produce v9 request, 16 x 64 KiB", { group: "produce" }, () => {
  produceFrame(9, sixteen64k);
});

Deno.bench("encode Fetch v11 response, 1 x 1 MiB", { group: "fetch" }, () => {
  encodeResponseFrame(ApiKey.Fetch, 11, 1, fetchBody([oneMiB]));
});

Deno.bench("encode Fetch v12 response, 16 x 64 KiB", { group: "fetch" }, () => {
  encodeResponseFrame(ApiKey.Fetch, 12, 1, fetchBody(sixteen64k));
});

Deno.bench("baseline: copy 1 MiB", { group: "fetch", baseline: true }, () => {
  new Uint8Array(MiB).set(oneMiB);
});

const fetchV12 = encodeResponseFrame(ApiKey.Fetch, 12, 1, fetchBody(sixteen64k)).subarray(4);
Deno.bench("decode Fetch v12 response, 16 x 64 KiB", { group: "fetch" }, () => {
  decodeResponseFrame(ApiKey.Fetch, 12, fetchV12);
});

const metadata = {
  brokers: [1, 2, 3].map((nodeId) => ({
    nodeId,
    host: `broker-${nodeId}`,
    port: 9092,
    rack: null,
  })),
  clusterId: "c",
  controllerId: 1,
  topics: Array.from({ length: 20 }, (_, i) => ({
    name: `topic-${i}`,
    partitions: Array.from({ length: 6 }, (_, p) => ({
      partitionIndex: p,
      leaderId: 1 + (p % 3),
      leaderEpoch: 3,
      replicaNodes: [1, 2, 3],
      isrNodes: [1, 2, 3],
    })),
  })),
};
Deno.bench("encode Metadata v12 response, 20 topics x 6 partitions", { group: "metadata" }, () => {
  encodeResponseFrame(ApiKey.Metadata, 12, 1, metadata);
});
const metadataFrame = encodeResponseFrame(ApiKey.Metadata, 12, 1, metadata).subarray(4);
Deno.bench("decode Metadata v12 response, 20 topics x 6 partitions", { group: "metadata" }, () => {
  decodeResponseFrame(ApiKey.Metadata, 12, metadataFrame);
});
