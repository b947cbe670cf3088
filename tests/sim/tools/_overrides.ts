/**
 * SIM_EXCLUDE=kind,kind drops fault kinds from every seed's menu (to triage one bug at a
 * time); SIM_ONLY=kind,kind keeps only those; SIM_FAULT_MS=n sets every seed's fault
 * phase; SIM_COMMITTERS=n the number of committing groups; SIM_PROFILE=quick the test
 * suite's shorter fault phases.
 */
import {
  ALL_FAULTS,
  type FaultKind,
  quickOverrides,
  type SimConfig,
  swarmConfig,
} from "../_cluster/cluster_sim.ts";

const exclude = new Set((Deno.env.get("SIM_EXCLUDE") ?? "").split(",").filter(Boolean));

/** The config overrides the environment asks for, for `seed`. */
export function overridesFor(seed: number): Partial<SimConfig> {
  const faultMs = Deno.env.get("SIM_FAULT_MS");
  const base: Partial<SimConfig> = faultMs
    ? { faultMs: Number(faultMs) }
    : Deno.env.get("SIM_PROFILE") === "quick"
    ? quickOverrides(seed)
    : {};
  const only = Deno.env.get("SIM_ONLY");
  if (only) base.faults = only.split(",") as FaultKind[];
  const committers = Deno.env.get("SIM_COMMITTERS");
  if (committers) base.committers = Number(committers);
  if (exclude.size === 0) return base;
  let faults = swarmConfig(seed).faults.filter((f) => !exclude.has(f));
  if (faults.length === 0) {
    faults = ALL_FAULTS.filter((f) => !exclude.has(f)).slice(0, 1) as FaultKind[];
  }
  return { ...base, faults };
}
