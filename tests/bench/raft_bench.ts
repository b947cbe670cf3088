/**
 * Raft macro benchmark: three node processes on loopback with fsync (real files in a
 * temp dir). Prints one JSON line per figure: committed proposals/s and commit latency
 * p50/p99 for 100 B and 4 KiB entries with 1 and 64 proposals in flight, and the election
 * time after `kill -9` of the leader (median of 5). Baselines measured in the same run:
 * loopback TCP and append+fsync throughput (DESIGN §12), and the fdatasync latency of a
 * 4 KiB append (commit latencies are given as ratios to it).
 * Run: `deno run -A tests/bench/raft_bench.ts`.
 */
import { quantile, report } from "./_report.ts";
import { appendFsyncMBps, loopbackTcpMBps } from "./baselines.ts";
import {
  findLeader,
  freePorts,
  RaftProcess,
  type RaftProcess as RaftProcessT,
  waitFor,
} from "../raft/_proc.ts";

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
  return quantile(times, 0.5);
}

const base = await Deno.makeTempDir({ prefix: "raft-bench-" });
const ports = freePorts(3);
const peers = ports.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(",");
const procs = new Map<number, RaftProcessT>();
const spawn = (id: number) => {
  const p = new RaftProcess(id, peers, `${base}/node-${id}`, { snapshotEvery: 100_000 });
  procs.set(id, p);
  return p;
};
const live = () => [...procs.values()].filter((p) => !p.exited);

try {
  const tcp = { name: "loopback_tcp_MBps", value: await loopbackTcpMBps() };
  const disk = { name: "append_fsync_MBps", value: await appendFsyncMBps() };
  const fsync = { name: "fdatasync_4KiB_p50_ms", value: await fsyncBaselineMs(base) };
  report("raft.baseline.loopback_tcp", tcp.value, "MB/s");
  report("raft.baseline.append_fsync", disk.value, "MB/s");
  report("raft.baseline.fdatasync_4KiB_p50", fsync.value, "ms");
  for (const id of [1, 2, 3]) spawn(id);
  let leader = await waitFor("a leader", () => findLeader(live()), 30_000);
  for (const size of [100, 4096]) {
    for (const inflight of [1, 64]) {
      const count = inflight === 1 ? 400 : 4000;
      const r = await procs.get(leader)!.request({ op: "bench", count, inflight, size });
      if (r.ok !== true) throw new Error(`bench failed: ${JSON.stringify(r)}`);
      const lat = r.latencies as number[];
      const perSecond = lat.length / ((r.elapsedMs as number) / 1000);
      const tag = `raft.commit.${size}B.inflight${inflight}`;
      report(`${tag}.throughput`, perSecond, "proposals/s");
      report(`${tag}.payload`, (perSecond * size) / 1e6, "MB/s", disk);
      report(`${tag}.latency_p50`, quantile(lat, 0.5), "ms", fsync);
      report(`${tag}.latency_p99`, quantile(lat, 0.99), "ms", fsync);
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
  // Tick 100 ms, election timeout 10-20 ticks (the driver's defaults).
  report("raft.election_after_kill.median", quantile(elections, 0.5), "ms");
  report("raft.election_after_kill.max", Math.max(...elections), "ms");
} finally {
  await Promise.all([...procs.values()].map((p) => p.kill()));
  await Deno.remove(base, { recursive: true });
}
