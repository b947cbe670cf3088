/**
 * Sequential one-record produces to one partition, each waiting for its answer: the
 * broker's own acknowledgement latency without client batching (p50/p99/max).
 *
 * Run: deno run -A tests/bench/tools/ack_latency.ts --bootstrap HOST:PORT --topic T
 *      [--partition 0] [--acks -1] [--count 2000]
 */
import { parseArgs } from "node:util";
import { KafkaConnection } from "../../../lib/client/mod.ts";
import { ApiKey } from "../../../lib/protocol/mod.ts";
import { oneRecordProduce } from "../../_helpers/produce.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    bootstrap: { type: "string", default: "127.0.0.1:9092" },
    topic: { type: "string", default: "bench" },
    partition: { type: "string", default: "0" },
    acks: { type: "string", default: "-1" },
    count: { type: "string", default: "2000" },
  },
});
const [host, port] = values.bootstrap.split(":");
const partition = Number(values.partition);
const meta = await KafkaConnection.connect(host!, Number(port), "ack-latency");
const md = await meta.request(ApiKey.Metadata, 4, { topics: [{ name: values.topic }] });
const leader = md.topics[0]!.partitions.find((p) => p.partitionIndex === partition)!.leaderId;
const broker = md.brokers.find((b) => b.nodeId === leader)!;
meta.close();
const conn = await KafkaConnection.connect(broker.host, broker.port, "ack-latency");
const lat: number[] = [];
for (let i = 0; i < Number(values.count); i++) {
  const body = oneRecordProduce(values.topic, partition, `v${i}`, { acks: Number(values.acks) });
  const t = performance.now();
  const r = await conn.request(ApiKey.Produce, 7, body);
  lat.push(performance.now() - t);
  const code = r.responses[0]!.partitionResponses[0]!.errorCode;
  if (code !== 0) throw new Error(`Produce failed with error code ${code}`);
}
conn.close();
lat.sort((a, b) => a - b);
const q = (f: number) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))]!.toFixed(2);
// deno-lint-ignore no-console -- the tool's output
console.log(
  `acks=${values.acks} n=${lat.length} p50=${q(0.5)} ms p99=${q(0.99)} ms max=${q(1)} ms`,
);
