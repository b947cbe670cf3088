/**
 * Raft macro benchmark: three node processes on loopback with fsync (real files in a
 * temp dir). Prints one JSON line per figure: committed proposals/s and commit latency
 * p50/p99 for 100 B and 4 KiB entries with 1 and 64 proposals in flight, and the election
 * time after `kill -9` of the leader (median of 5). Baseline: the fdatasync latency of a
 * 4 KiB append measured in the same run. Run: `deno run -A tests/bench/raft_bench.ts`.
 */
import {
  findLeader,
  freePorts,
  RaftProcess,
  type RaftProcess as RaftProcessT,
  waitFor,
} from "../raft/_proc.ts";

function emit(fig: Record<string, unknown>): void {
  // deno-lint-ignore no-console
  console.log(JSON.stringify(fig));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function fsyncBaselineMs(dir: string): Promise<number> {
  const f = await Deno.open(`${dir}/baseline`, { write: true, create: true });
  const block = new Uint8Array(4096);
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    f.writeSync(block);
    const t = performance.now();
    await f.syncData();
    times.push(performance.now() - t);
  }
  f.close();
  times.sort((a, b) => a - b);
  return percentile(times, 0.5);
}

const base = await Deno.makeTempDir({ prefix: "raft-bench-" });
const ports = freePorts(3);
const peers = ports.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(",");
const procs = new Map<number, RaftProcessT>();
const spawn = (id: number) => {
  const p = new RaftProcess(id, peers, `${base}/node-${id}`, { snapshotEvery: 5000 });
  procs.set(id, p);
  return p;
};
const live = () => [...procs.values()].filter((p) => !p.exited);
const r3 = (x: number) => Math.round(x * 1000) / 1000;

try {
  const fsyncMs = await fsyncBaselineMs(base);
  emit({ name: "baseline.fdatasync_4k_p50", value: r3(fsyncMs), unit: "ms" });
  for (const id of [1, 2, 3]) spawn(id);
  let leader = await waitFor("a leader", () => findLeader(live()), 30_000);
  for (const size of [100, 4096]) {
    for (const inflight of [1, 64]) {
      const count = inflight === 1 ? 400 : 4000;
      const r = await procs.get(leader)!.request({ op: "bench", count, inflight, size });
      if (r.ok !== true) throw new Error(`bench failed: ${JSON.stringify(r)}`);
      const lat = (r.latencies as number[]).sort((a, b) => a - b);
      const elapsedS = (r.elapsedMs as number) / 1000;
      const tag = `raft.commit.${size}B.inflight${inflight}`;
      emit({
        name: `${tag}.throughput`,
        value: Math.round(lat.length / elapsedS),
        unit: "proposals/s",
      });
      emit({
        name: `${tag}.latency_p50`,
        value: r3(percentile(lat, 0.5)),
        unit: "ms",
        baseline: r3(fsyncMs),
        ratio: r3(percentile(lat, 0.5) / fsyncMs),
      });
      emit({ name: `${tag}.latency_p99`, value: r3(percentile(lat, 0.99)), unit: "ms" });
    }
  }
  const elections: number[] = [];
  for (let round = 0; round < 5; round++) {
    const old = leader;
    await procs.get(old)!.kill();
    const t0 = performance.now();
    leader = await waitFor(
      "a new leader",
      async () => {
        const l = await findLeader(live());
        return l !== undefined && l !== old ? l : undefined;
      },
      30_000,
      10,
    );
    elections.push(performance.now() - t0);
    const p = spawn(old);
    const target = (await procs.get(leader)!.getStatus())!.commit;
    await waitFor("restarted node catches up", async () => {
      const s = await p.getStatus();
      return s !== undefined && s.applied >= target ? true : undefined;
    }, 30_000);
  }
  elections.sort((a, b) => a - b);
  emit({
    name: "raft.election_after_kill.median",
    value: Math.round(percentile(elections, 0.5)),
    unit: "ms",
    samples: elections.map(Math.round),
    tickMs: 100,
    electionTicks: "10-20",
  });
} finally {
  await Promise.all([...procs.values()].map((p) => p.kill()));
  await Deno.remove(base, { recursive: true });
}
