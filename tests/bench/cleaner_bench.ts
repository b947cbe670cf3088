/**
 * The log cleaner (issue 12): how fast it cleans, and what it costs produce while it runs.
 *
 * - cleaner throughput: one cleaning of a compacted log (10,000 keys, 1 KiB values, the
 *   latest of each key kept), uncompressed and lz4, in MB/s of dirty log read;
 * - produce under cleaning: a node's produce rate (acks=1, 1 KiB, our pipelined load) to a
 *   plain topic while a second load fills another topic with keyed records: first a
 *   topic with the delete policy (nothing to clean), then a compacted one with 16 MiB
 *   segments, which the cleaner cleans as they roll.
 *
 * Run: deno run -A tests/bench/cleaner_bench.ts [--mb 256]
 */
import { parseArgs } from "node:util";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { cleanLog } from "../../lib/log/cleaner/mod.ts";
import { DEFAULT_LOG_CONFIG, PartitionLog } from "../../lib/log/mod.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { buildCodecBatch } from "../unit/log/_batches.ts";
import { systemTimers } from "../../lib/runtime/timers.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { report } from "./_report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { mb: { type: "string", default: "256" } },
});
const MB = Number(values.mb);
const KEYS = 10_000;
const VALUE = 1024;
const PER_BATCH = 64;
const encoder = new TextEncoder();

/** A batch of PER_BATCH keyed records (keys cycling over KEYS) with codec `codec`. */
function keyedBatch(first: number, codec: number): Uint8Array {
  // Each value: half random bytes, half a pattern: compressible, as values usually are,
  // but not to nothing.
  let x = (first * 2654435761) >>> 0 || 1;
  const valueOf = () =>
    new Uint8Array(VALUE).map((_, i) => {
      if (i % 2 === 1) return i & 0xff;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x & 0xff;
    });
  return buildCodecBatch(
    Array.from({ length: PER_BATCH }, (_, i) => ({
      key: encoder.encode(`key-${(first + i) % KEYS}`),
      value: valueOf(),
    })),
    codec,
    Date.now(),
  );
}

async function cleanerThroughput(codec: number): Promise<number> {
  await using dir = await tempDir();
  const config = {
    ...DEFAULT_LOG_CONFIG,
    segmentBytes: 8 * 1024 * 1024,
    compact: true,
    deletePolicy: false,
  };
  const log = await PartitionLog.open(`${dir.path}/c-0`, config, { name: "c-0" });
  try {
    let written = 0;
    for (let first = 0; written < MB * 1e6; first += PER_BATCH) {
      const b = keyedBatch(first, codec);
      log.append([b], { leaderEpoch: 0 });
      written += b.length;
    }
    await log.waitDurable(log.logEndOffset - 1);
    const start = performance.now();
    const r = await cleanLog(log, {
      nowMs: Date.now(),
      maxOffset: log.logEndOffset,
      mapBytes: 128 * 1024 * 1024,
      producerLastOffsets: new Set(),
      timers: systemTimers,
    });
    const seconds = (performance.now() - start) / 1000;
    return r.bytesRead / 2 / 1e6 / seconds; // each dirty byte is read twice (map, rewrite)
  } finally {
    await log.close();
  }
}

/** Produce MB/s to `topic` for `seconds` with pipelined 64-record batches. */
async function produceRate(port: number, topic: string, seconds: number): Promise<number> {
  const conns = await Promise.all(
    Array.from({ length: 4 }, () => KafkaConnection.connect("127.0.0.1", port)),
  );
  const batch = keyedBatch(0, 0);
  let bytes = 0;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(conns.flatMap((conn) =>
    Array.from({ length: 8 }, async () => {
      while (performance.now() < deadline) {
        const res = await conn.request(ApiKey.Produce, 9, {
          acks: 1,
          timeoutMs: 30_000,
          topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }],
        });
        const code = res.responses[0]!.partitionResponses[0]!.errorCode;
        if (code !== ErrorCode.NONE) throw new Error(`Produce failed with ${code}`);
        bytes += batch.length;
      }
    })
  ));
  for (const c of conns) c.close();
  return bytes / 1e6 / ((performance.now() - start) / 1000);
}

/** Fills `topic` with keyed 64-record batches for `seconds`; returns MB/s. */
async function fill(port: number, topic: string, seconds: number): Promise<number> {
  const conn = await KafkaConnection.connect("127.0.0.1", port);
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let bytes = 0;
  for (let first = 0; performance.now() < deadline; first += PER_BATCH) {
    const records = keyedBatch(first, 0);
    const res = await conn.request(ApiKey.Produce, 9, {
      acks: 1,
      timeoutMs: 30_000,
      topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
    });
    if (res.responses[0]!.partitionResponses[0]!.errorCode !== ErrorCode.NONE) {
      throw new Error(`Produce to ${topic} failed`);
    }
    bytes += records.length;
  }
  conn.close();
  return bytes / 1e6 / ((performance.now() - start) / 1000);
}

async function produceUnderCleaning(): Promise<{ idle: number; cleaning: number }> {
  await using dir = await tempDir();
  const node = await NodeProcess.start({
    dataDir: nodeDir(dir.path),
    args: ["--log-cleaner-backoff-ms", "200"],
  });
  try {
    const conn = await KafkaConnection.connect("127.0.0.1", node.port);
    const create = async (name: string, configs: [string, string][]) => {
      const r = await conn.request(ApiKey.CreateTopics, 4, {
        topics: [{
          name,
          numPartitions: 1,
          replicationFactor: 1,
          assignments: [],
          configs: configs.map(([n, v]) => ({ name: n, value: v })),
        }],
        timeoutMs: 30_000,
        validateOnly: false,
      });
      if (r.topics[0]!.errorCode !== ErrorCode.NONE) throw new Error(`CreateTopics ${name}`);
    };
    const segments: [string, string] = ["segment.bytes", String(16 * 1024 * 1024)];
    await create("plain", []);
    await create("bulk-delete", [segments]);
    await create("bulk-compact", [
      ["cleanup.policy", "compact"],
      segments,
      ["min.cleanable.dirty.ratio", "0.01"],
    ]);
    conn.close();
    const [idle] = await Promise.all([
      produceRate(node.port, "plain", 8),
      fill(node.port, "bulk-delete", 8),
    ]);
    const [cleaning] = await Promise.all([
      produceRate(node.port, "plain", 8),
      fill(node.port, "bulk-compact", 8),
    ]);
    return { idle, cleaning };
  } finally {
    await node.kill();
  }
}

const plain = await cleanerThroughput(0);
const lz4 = await cleanerThroughput(3);
const produce = await produceUnderCleaning();
report(`cleaner: one cleaning of ${MB} MB, 10,000 keys, uncompressed`, plain, "MB/s");
report(`cleaner: one cleaning of ${MB} MB, 10,000 keys, lz4 batches`, lz4, "MB/s");
const idleName = "produce acks=1 beside a bulk load into a delete-policy topic (no cleaning)";
report(idleName, produce.idle, "MB/s");
report(
  "produce acks=1 beside a bulk load into a compacted topic (the cleaner at work)",
  produce.cleaning,
  "MB/s",
  { name: idleName, value: produce.idle },
);
