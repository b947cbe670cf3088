// deno-lint-ignore-file no-console
import { runSeed } from "../_cluster/run_seed.ts";
import { overridesFor } from "./_overrides.ts";
for (const seed of Deno.args.map(Number)) {
  try {
    const s = await runSeed(seed, { overrides: overridesFor(seed) });
    console.log(`seed ${seed} ok: ${s.events} events`);
  } catch (e) {
    const lines = String((e as Error).message ?? e).split("\n");
    const after = lines.find((l) => l.startsWith("after ")) ?? "";
    console.log(`seed ${seed} FAILED: ${lines.slice(0, 3).join(" | ")} || ${after}`);
  }
}
