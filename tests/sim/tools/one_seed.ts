// deno-lint-ignore-file no-console
import { runSeed } from "../_cluster/run_seed.ts";
import { overridesFor } from "./_overrides.ts";
const seed = Number(Deno.args[0] ?? 1);
try {
  const s = await runSeed(seed, {
    traceLines: Number(Deno.args[1] ?? 150),
    overrides: overridesFor(seed),
    logLevel: Deno.env.get("SIM_DEBUG") ? "debug" : "info",
  });
  console.log(JSON.stringify({ ...s, config: undefined }));
  console.log(JSON.stringify(s.config));
} catch (e) {
  console.log(String((e as Error).message ?? e).slice(0, 50_000_000));
  Deno.exit(1);
}
