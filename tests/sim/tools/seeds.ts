// deno-lint-ignore-file no-console
/**
 * Runs a range of seeds of the whole-cluster simulation, one line per seed, and a summary:
 * `deno run -A tests/sim/tools/seeds.ts FIRST COUNT`. Failing seeds print their first
 * violation; replay one with `deno run -A tests/sim/tools/one_seed.ts SEED`.
 */
import { runSeed } from "../_cluster/run_seed.ts";
import { overridesFor } from "./_overrides.ts";

const first = Number(Deno.args[0] ?? 1);
const count = Number(Deno.args[1] ?? 20);
let failed = 0;
const worstGap = new Map<string, { ms: number; seed: number }>();
let events = 0;
let virtualMs = 0;
const started = performance.now();
for (let seed = first; seed < first + count; seed++) {
  try {
    const s = await runSeed(seed, { overrides: overridesFor(seed) });
    events += s.events;
    for (const [kind, ms] of Object.entries(s.gapsByKind)) {
      if ((worstGap.get(kind)?.ms ?? -1) < ms) worstGap.set(kind, { ms, seed });
    }
    virtualMs += s.virtualMs;
    console.log(
      `seed ${seed} ok: ${s.events} events, ${(s.virtualMs / 1000).toFixed(1)} s virtual, ${
        s.wallMs.toFixed(0)
      } ms, ${s.acked} acks, recovery ${s.recoveryMs.toFixed(0)} ms, faults ${
        JSON.stringify(s.faults)
      }`,
    );
  } catch (e) {
    failed++;
    const lines = String((e as Error).message ?? e).split("\n");
    console.log(`seed ${seed} FAILED: ${lines.slice(0, 3).join(" | ")}`);
  }
}
const wall = (performance.now() - started) / 1000;
console.log(
  "longest per-partition ack gap during a lone fault, by kind: " +
    [...worstGap].sort().map(([k, g]) => `${k} ${g.ms.toFixed(0)} ms (seed ${g.seed})`).join(", "),
);
console.log(
  `${count - failed} passed, ${failed} failed; ${events} events in ${wall.toFixed(1)} s (${
    (events / wall).toFixed(0)
  }/s), ${(virtualMs / 1000).toFixed(0)} s virtual`,
);
