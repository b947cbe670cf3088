/**
 * Single-node broker benchmark (issue 2 / DESIGN §12): a pipelined load generator (our
 * own protocol client) against a real node process on loopback, flush policy "always" by
 * default (every acknowledgement waits for fsync).
 *
 * Figures: produce acks=1 with 1 KiB records in ~64 KiB batches (MB/s, records/s, p50/p99
 * request latency), produce with 100-byte records (records/s), fetch throughput reading
 * a large partition from the start (MB/s); each also as a ratio to the raw loopback-TCP
 * and append+fsync rates measured first in the same run.
 *
 * Run: deno run -A tests/benc./broker.ts [--seconds N]
 */
import { parseArgs } from "node:util";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { buildSizedBatch } from "../unit/log/_batches.ts";
import { appendFsyncMBps, loopbackTcpMBps } from "./baselines.ts";
import { quantile, report } from "./_report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "5" },
    flush: { type: "string", default: "always" },
  },
});
const SECONDS = Number(values.seconds);
const PARTITIONS = 4;
const CONNECTIONS = 4;
const IN_FLIGHT = 8;

interface LoadResult {
  bytes: number;
  records: number;
  seconds: number;
  latenciesMs: number[];
}

/** Keeps IN_FLIGHT produce requests outstanding on each of CONNECTIONS connections. */
async function produceLoad(
  port: number,
  topic: string,
  batch: Uint8Array,
  recordsPerBatch: number,
  seconds: number,
): Promise<LoadResult> {
  const conns = await Promise.all(
    Array.from({ length: CONNECTIONS }, () => KafkaConnection.connect("127.0.0.1", port)),
  );
  const latenciesMs: number[] = [];
  let batches = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let next = 0;
  const worker = async (conn: KafkaConnection) => {
    while (performance.now() < deadline) {
      const partition = next++ % PARTITIONS;
      const t0 = performance.now();
      const res = await conn.request(ApiKey.Produce, 9, {
        acks: 1,
        timeoutMs: 30_000,
        topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }],
      });
      const code = res.responses[0]!.partitionResponses[0]!.errorCode;
      if (code !== ErrorCode.NONE) throw new Error(`produce failed with ${code}`);
      latenciesMs.push(performance.now() - t0);
      batches++;
    }
  };
  await Promise.all(conns.flatMap((c) => Array.from({ length: IN_FLIGHT }, () => worker(c))));
  const elapsed = (performance.now() - start) / 1000;
  await Promise.all(conns.map((c) => c.close()));
  return {
    bytes: batches * batch.length,
    records: batches * recordsPerBatch,
    seconds: elapsed,
    latenciesMs,
  };
}

/** Reads every partition of `topic` from offset 0 to its end; returns MB/s. */
async function fetchAllMBps(port: number, topic: string): Promise<{ mbps: number; bytes: number }> {
  const conn = await KafkaConnection.connect("127.0.0.1", port);
  let bytes = 0;
  const start = performance.now();
  for (let partition = 0; partition < PARTITIONS; partition++) {
    let offset = 0n;
    for (;;) {
      const res = await conn.request(ApiKey.Fetch, 11, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 16 << 20,
        topics: [{
          topic,
          partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 16 << 20 }],
        }],
      });
      const p = res.responses[0]!.partitions[0]!;
      const records = p.records;
      if (!records || records.length === 0) break;
      bytes += records.length;
      // Next offset: after the last whole batch (baseOffset + lastOffsetDelta + 1).
      const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
      let pos = 0;
      let last = offset;
      while (pos + 61 <= records.length) {
        const size = view.getInt32(pos + 8) + 12;
        if (pos + size > records.length) break;
        last = view.getBigInt64(pos) + BigInt(view.getInt32(pos + 23)) + 1n;
        pos += size;
      }
      offset = last;
      if (offset >= p.highWatermark) break;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  await conn.close();
  return { mbps: bytes / 1e6 / seconds, bytes };
}

async function createTopic(port: number, name: string): Promise<void> {
  const conn = await KafkaConnection.connect("127.0.0.1", port);
  const res = await conn.request(ApiKey.CreateTopics, 7, {
    topics: [{ name, numPartitions: PARTITIONS, replicationFactor: 1 }],
    timeoutMs: 10_000,
  });
  await conn.close();
  if (res.topics[0]!.errorCode !== ErrorCode.NONE) throw new Error(`create ${name} failed`);
}

const tcp = { name: "loopback_tcp_MBps", value: await loopbackTcpMBps() };
report(tcp.name, tcp.value, "MB/s");
const disk = { name: "append_fsync_MBps", value: await appendFsyncMBps() };
report(disk.name, disk.value, "MB/s");

await using dir = await tempDir("tidelog-bench-");
const node = await NodeProcess.start({
  dataDir: `${dir.path}/node-1`,
  args: ["--log-level", "warning", "--flush", values.flush],
});
try {
  await createTopic(node.port, "bench-1k");
  const batch1k = buildSizedBatch(64, 1000); // 64 records of ~1 KiB: ~66 KiB per batch
  const big = await produceLoad(node.port, "bench-1k", batch1k, 64, SECONDS);
  const mbps = big.bytes / 1e6 / big.seconds;
  report("produce_1KiB_acks1_MBps", mbps, "MB/s", disk);
  report("produce_1KiB_acks1_MBps_vs_tcp", mbps, "MB/s", tcp);
  report("produce_1KiB_acks1_records_per_s", big.records / big.seconds, "records/s");
  report("produce_1KiB_acks1_p50_ms", quantile(big.latenciesMs, 0.5), "ms");
  report("produce_1KiB_acks1_p99_ms", quantile(big.latenciesMs, 0.99), "ms");

  await createTopic(node.port, "bench-100b");
  const batch100 = buildSizedBatch(600, 80); // 600 records of ~100 B on the wire: ~64 KiB
  const small = await produceLoad(node.port, "bench-100b", batch100, 600, SECONDS);
  report("produce_100B_acks1_records_per_s", small.records / small.seconds, "records/s");
  report("produce_100B_acks1_MBps", small.bytes / 1e6 / small.seconds, "MB/s", disk);

  const fetched = await fetchAllMBps(node.port, "bench-1k");
  report("fetch_from_start_MBps", fetched.mbps, "MB/s", tcp);
  report("fetch_from_start_bytes", fetched.bytes / 1e6, "MB");
} finally {
  await node.kill("SIGKILL");
}
