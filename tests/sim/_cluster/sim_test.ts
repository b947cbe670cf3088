/**
 * The whole-cluster simulation as a test, in shards (one test file each, so that
 * `deno test --parallel` runs them side by side): CI runs DEFAULT_SEEDS seeds of the quick
 * profile; CLUSTER_SIM_SEEDS=N runs N seeds from CLUSTER_SIM_FIRST (default 1) across the
 * shards; CLUSTER_SIM_SEED=s replays one seed in the first shard, its debug trace printed
 * if it fails; CLUSTER_SIM_PROFILE=full gives every seed its full 8-20 s fault phase.
 * The fault menu and the checkers: cluster_sim.ts, nemesis.ts and checkers.ts here.
 */
import { quickOverrides } from "./cluster_sim.ts";
import { runSeed, type SeedSummary } from "./run_seed.ts";

/** Seeds per CI run, over all shards (about 0.55 s of one core each). */
export const DEFAULT_SEEDS = 2000;
export const SHARDS = 2;

function envInt(name: string): number | undefined {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
  return n;
}

/** Registers shard `shard` (0-based) of the simulation test. */
export function simTest(shard: number): void {
  const one = envInt("CLUSTER_SIM_SEED");
  const first = envInt("CLUSTER_SIM_FIRST") ?? 1;
  const count = envInt("CLUSTER_SIM_SEEDS") ?? DEFAULT_SEEDS;
  const profile = Deno.env.get("CLUSTER_SIM_PROFILE") ?? "quick";
  if (profile !== "quick" && profile !== "full") {
    throw new Error(`CLUSTER_SIM_PROFILE must be quick or full, not ${profile}`);
  }
  const seeds = one !== undefined
    ? (shard === 0 ? [one] : [])
    : Array.from({ length: count }, (_, i) => first + i).filter((_, i) => i % SHARDS === shard);
  Deno.test({
    name: `cluster simulation, shard ${shard + 1}/${SHARDS}: ${seeds.length} ${profile} seed(s)${
      seeds.length > 0 ? ` from ${seeds[0]}` : ""
    }, no invariant broken`,
    ignore: seeds.length === 0,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const summaries: SeedSummary[] = [];
      // Every seed runs: the report names all failing ones, the first in full.
      const failures: { seed: number; message: string }[] = [];
      const started = performance.now();
      for (const [i, seed] of seeds.entries()) {
        try {
          summaries.push(
            await runSeed(seed, {
              ...(profile === "quick" ? { overrides: quickOverrides(seed) } : {}),
              replay: `CLUSTER_SIM_SEED=${seed}${
                profile === "full" ? " CLUSTER_SIM_PROFILE=full" : ""
              } deno test -A tests/sim/cluster_sim_test.ts`,
              ...(one !== undefined ? { logLevel: "debug", traceLines: 600 } : {}),
            }),
          );
        } catch (err) {
          const message = String((err as Error).message ?? err);
          failures.push({ seed, message });
          // deno-lint-ignore no-console
          console.log(
            `cluster sim: seed ${seed} FAILED: ${message.split("\n").slice(0, 2).join(" | ")}`,
          );
        }
        if ((i + 1) % 500 === 0 && i + 1 < seeds.length) {
          // deno-lint-ignore no-console
          console.log(
            `cluster sim shard ${shard + 1}: ${
              i + 1
            }/${seeds.length} seeds, ${failures.length} failed, ${
              ((performance.now() - started) / 1000).toFixed(0)
            } s`,
          );
        }
      }
      const wall = (performance.now() - started) / 1000;
      const events = summaries.reduce((a, s) => a + s.events, 0);
      const virtual = summaries.reduce((a, s) => a + s.virtualMs, 0) / 1000;
      const acked = summaries.reduce((a, s) => a + s.acked, 0);
      const worstRecovery = Math.max(0, ...summaries.map((s) => s.recoveryMs));
      const gaps = new Map<string, number>();
      for (const s of summaries) {
        for (const [kind, ms] of Object.entries(s.gapsByKind)) {
          gaps.set(kind, Math.max(gaps.get(kind) ?? 0, ms));
        }
      }
      // deno-lint-ignore no-console
      console.log(
        `cluster sim shard ${shard + 1}: ${seeds.length} seeds, ${events} events (${
          (events / wall).toFixed(0)
        }/s), ${virtual.toFixed(0)} s virtual in ${wall.toFixed(1)} s, ${acked} acks; ` +
          `slowest recovery after heal ${(worstRecovery / 1000).toFixed(2)} s; ` +
          `longest ack gap in a lone fault: ${
            [...gaps].sort().map(([k, ms]) => `${k} ${ms.toFixed(0)} ms`).join(", ")
          }`,
      );
      if (failures.length > 0) {
        throw new Error(
          `${failures.length} of ${seeds.length} seeds failed: ${
            failures.map((f) => f.seed).join(", ")
          }\n${failures[0]!.message}`,
        );
      }
    },
  });
}
