/** SIM_EXCLUDE=kind,kind drops fault kinds from every seed's menu (to triage one bug at a time). */
import {
  ALL_FAULTS,
  type FaultKind,
  type SimConfig,
  swarmConfig,
} from "../_cluster/cluster_sim.ts";

const exclude = new Set((Deno.env.get("SIM_EXCLUDE") ?? "").split(",").filter(Boolean));

/** The config overrides the environment asks for, for `seed`. */
export function overridesFor(seed: number): Partial<SimConfig> {
  if (exclude.size === 0) return {};
  let faults = swarmConfig(seed).faults.filter((f) => !exclude.has(f));
  if (faults.length === 0) {
    faults = ALL_FAULTS.filter((f) => !exclude.has(f)).slice(0, 1) as FaultKind[];
  }
  return { faults };
}
