/**
 * `deno task bench`: runs every benchmark one after another (the machine has 2 cores;
 * running them together would measure contention). Each prints JSON lines of figures.
 * The figures to quote are side_by_side.ts's (an external load generator, Apache Kafka
 * beside Tidelog); the others use our own generator, for quick local loops.
 */
import { fileURLToPath } from "node:url";

const here = (name: string) => fileURLToPath(new URL(name, import.meta.url));

const runs: { label: string; args: string[] }[] = [
  { label: "broker (single node)", args: ["run", "--allow-all", here("./broker.ts")] },
  { label: "partition log", args: ["run", "--allow-all", here("./log.ts")] },
  { label: "raft (3 processes)", args: ["run", "--allow-all", here("./raft_bench.ts")] },
  {
    label: "cluster (3 nodes, acks=all)",
    args: ["run", "--allow-all", here("./cluster_bench.ts")],
  },
  { label: "protocol codec", args: ["bench", "--allow-all", here("./codec_bench.ts")] },
  { label: "log cleaner", args: ["run", "--allow-all", here("./cleaner_bench.ts")] },
  {
    label: "transactions beside Apache Kafka (Kafka's producer, 10 and 1,000 records each)",
    args: ["run", "--allow-all", here("./txn_bench.ts")],
  },
  {
    label: "Tidelog beside Apache Kafka, with rdkafka_performance and its ceiling",
    args: ["run", "--allow-all", here("./side_by_side.ts")],
  },
];

let failed = 0;
for (const { label, args } of runs) {
  // deno-lint-ignore no-console -- progress for the person running benchmarks
  console.error(`== ${label}`);
  const status = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) failed++;
}
Deno.exit(failed === 0 ? 0 : 1);
