/**
 * One run of the whole-cluster simulation from a seed: boot, faults with checks after
 * every event, heal, liveness, data checks. Returns a summary; a broken invariant throws
 * {@linkcode SimViolation} whose message holds the seed, the violations and the end of
 * the trace (replay with CLUSTER_SIM_SEED=<seed>).
 */
import { checkData, type FinalPartition, latestImage, StepChecker } from "./checkers.ts";
import { ClusterSim, type SimConfig, SimViolation, swarmConfig, TOPIC } from "./cluster_sim.ts";
import {
  checkCommitted,
  coordinatorOf,
  fetchCommitted,
  readToHighWatermark,
  Router,
} from "./clients.ts";
import { Nemesis } from "./nemesis.ts";

/** What one run did. */
export interface SeedSummary {
  seed: number;
  config: SimConfig;
  events: number;
  virtualMs: number;
  wallMs: number;
  acked: number;
  read: number;
  faults: Record<string, number>;
  /** Virtual ms from the heal until every partition was acknowledged again. */
  recoveryMs: number;
  /** The longest time a partition went without an acknowledgement during the faults. */
  longestGapMs: number;
  /**
   * Per fault kind, the longest time a partition went without an acknowledgement
   * during a fault of that kind that overlapped no other (and the few seconds after).
   */
  gapsByKind: Record<string, number>;
}

/** Options of {@linkcode runSeed}. */
export interface RunOptions {
  overrides?: Partial<SimConfig>;
  /** Log level captured in the trace. @default "info" */
  logLevel?: "debug" | "info";
  /** Lines of trace in a failure message. @default 250 */
  traceLines?: number;
  /** How to replay the seed, for the failure message. @default the full profile's test */
  replay?: string;
}

/** Runs the simulation of `seed`; throws SimViolation on a broken invariant. */
export async function runSeed(seed: number, options: RunOptions = {}): Promise<SeedSummary> {
  const started = performance.now();
  const config = swarmConfig(seed, options.overrides);
  const sim = new ClusterSim(config);
  sim.traceKeep = Math.max(600, options.traceLines ?? 0);
  await sim.captureLogs(options.logLevel ?? "info");
  const checker = new StepChecker(sim);
  const nemesis = new Nemesis(sim);
  const fail = (what: string, violations: string[]): never => {
    throw new SimViolation(
      `seed ${seed}: ${what}\n  ${violations.join("\n  ")}\n` +
        `config: ${JSON.stringify(config)}\n` +
        `after ${sim.scheduler.eventCount} events, ${(sim.now / 1000).toFixed(3)} s virtual\n` +
        `--- trace (last lines) ---\n${sim.formatTrace(options.traceLines ?? 250)}\n` +
        `replay: ${
          options.replay ??
            `CLUSTER_SIM_SEED=${seed} CLUSTER_SIM_PROFILE=full deno test -A tests/sim/cluster_sim_test.ts`
        }`,
    );
  };
  const runChecked = async (untilMs: number, done?: () => boolean) => {
    while (sim.now < untilMs && !(done?.() ?? false)) {
      if (sim.scheduler.nextEventAt() > untilMs) {
        await sim.scheduler.runUntil(untilMs);
        break;
      }
      await sim.scheduler.step();
      checker.check();
      const problems = [...checker.violations, ...sim.history.violations];
      if (problems.length > 0) fail("invariant broken", problems);
      if (sim.scheduler.failures.length > 0) {
        fail("an event threw", sim.scheduler.failures.map((e) => String((e as Error).stack ?? e)));
      }
    }
  };
  // Deno exits on an unhandled rejection: in a node that is a crash, and a bug.
  const onUnhandled = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    const who = sim.scheduler.current?.name ?? "a process";
    const reason = e.reason as Error;
    sim.history.violations.push(
      `unhandled promise rejection (would exit ${who}): ${reason?.stack ?? String(e.reason)}`,
    );
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    for (const m of sim.machines) sim.start(m);
    await runChecked(60_000, () => sim.allUp());
    if (!sim.allUp()) fail("the cluster did not start", []);
    await sim.createTopic();
    sim.startClients();
    const faultsStart = sim.now;
    nemesis.start(faultsStart + config.faultMs);
    await runChecked(faultsStart + config.faultMs);
    nemesis.stop();
    sim.healAll();
    const healedAt = sim.now;
    const ackedSince = () => {
      for (let p = 0; p < config.partitions; p++) {
        const times = sim.history.ackTimes.get(p) ?? [];
        if (!(times.length > 0 && times[times.length - 1]! > healedAt)) return false;
      }
      return true;
    };
    // Live: every node runs, the controller's view has every broker unfenced, every node's
    // metadata has caught up with it, and every partition has been acknowledged since.
    const live = () => {
      if (!sim.allUp()) return false;
      const latest = latestImage(sim);
      if (latest === null) return false;
      // ... and every replica is back in its ISR (a replica that never catches up again,
      // e.g. one stuck truncating, is a wedged partition).
      const topic = latest.topic(TOPIC);
      return sim.machines.every((m) =>
        latest.brokers.get(m.id)?.fenced === false &&
        m.node!.internals.store.image.offset === latest.offset
      ) && topic !== undefined &&
        topic.partitions.every((p) => p.isr.length === p.replicas.length) && ackedSince();
    };
    await runChecked(healedAt + config.livenessMs, live);
    if (!live()) {
      fail(`no liveness within ${config.livenessMs} ms after the heal`, [
        `up: ${
          sim.machines.map((m) =>
            `n${m.id}=${
              m.node
                ? `${
                  latestImage(sim)?.brokers.get(m.id)?.fenced ? "fenced" : "unfenced"
                }@${m.node.internals.store.image.offset}`
                : m.down ?? "starting"
            }`
          ).join(" ")
        } (latest metadata offset ${latestImage(sim)?.offset})`,
        `ISRs: ${
          latestImage(sim)?.topic(TOPIC)?.partitions.map((p, i) =>
            `${i}:[${p.isr.join(",")}]${p.leaderRecoveryState ? " RECOVERING" : ""}`
          ).join(" ")
        }`,
        `acks after heal per partition: ${
          Array.from({ length: config.partitions }, (_, p) =>
            (sim.history.ackTimes.get(p) ?? []).filter((t) =>
              t > healedAt
            ).length).join(",")
        }`,
      ]);
    }
    const recoveryMs = sim.now - healedAt;
    sim.stopClients();
    // Let the last requests settle and the followers catch up.
    await runChecked(sim.now + 2000);
    const finals: FinalPartition[] = [];
    for (let p = 0; p < config.partitions; p++) {
      const final = await sim.runClient(`final${p}`, async (env) => {
        const router = new Router(env);
        for (let i = 0; i < 100; i++) {
          const got = await readToHighWatermark(env, router, p);
          if (got) return got;
          await new Promise((r) => env.timers.setTimeout(() => r(undefined), 100));
        }
        return null;
      });
      if (!final) fail(`partition ${p} could not be read back`, []);
      finals.push({ partition: p, ...final! });
    }
    for (const group of sim.groups) {
      const seen = await sim.runClient(`final-${group}`, async (env) => {
        const router = new Router(env);
        for (let i = 0; i < 100; i++) {
          const c = await coordinatorOf(env, router, group);
          const got = c === null ? null : await fetchCommitted(env, router, c, group);
          if (got !== null) return got;
          await new Promise((r) => env.timers.setTimeout(() => r(undefined), 100));
        }
        return null;
      });
      if (seen === null) fail(`the offsets of group ${group} could not be fetched`, []);
      checkCommitted(sim.history, sim.commits, group, seen!);
    }
    const problems = [...checkData(sim, finals), ...sim.history.violations];
    if (problems.length > 0) fail("data check failed", problems);
    let acked = 0;
    for (const v of sim.history.sent.values()) if (v.acked) acked++;
    let read = 0;
    for (const r of sim.history.read.values()) read += r.size;
    let longestGapMs = 0;
    for (const times of sim.history.ackTimes.values()) {
      let prev = faultsStart;
      for (const t of times) {
        if (t > faultsStart + config.faultMs) break;
        longestGapMs = Math.max(longestGapMs, t - prev);
        prev = t;
      }
    }
    const gapsByKind: Record<string, number> = {};
    for (const w of nemesis.windows) {
      if (w.end === Infinity) continue;
      const alone = nemesis.windows.every((o) => o === w || o.end < w.start || o.start > w.end);
      if (!alone) continue;
      const until = w.end + 3000;
      for (const times of sim.history.ackTimes.values()) {
        let prev = -Infinity;
        for (const t of times) {
          // A gap counts if it overlaps the fault (acks before and after it).
          if (prev !== -Infinity && t >= w.start && prev <= until) {
            const gap = Math.min(t, until) - Math.max(prev, w.start);
            gapsByKind[w.kind] = Math.max(gapsByKind[w.kind] ?? 0, gap);
          }
          prev = t;
        }
      }
    }
    return {
      seed,
      config,
      gapsByKind,
      events: sim.scheduler.eventCount,
      virtualMs: sim.now,
      wallMs: performance.now() - started,
      acked,
      read,
      faults: Object.fromEntries(nemesis.counts),
      recoveryMs,
      longestGapMs,
    };
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
    sim.close();
  }
}
