/**
 * Scripted runs of the simulated cluster, for regression tests of one fault each: boot a
 * cluster, produce and read with simple clients, inject exactly the faults a scenario
 * names (no random schedule), and check the per-event invariants all along.
 */
import { StepChecker } from "./checkers.ts";
import { ClusterSim, type SimConfig, SimViolation, swarmConfig } from "./cluster_sim.ts";
import { readToHighWatermark, Router, runProducer } from "./clients.ts";

/** A quiet cluster for a scenario: `overrides` on a fixed config, no fault schedule. */
export class Scenario {
  readonly sim: ClusterSim;
  readonly checker: StepChecker;

  private constructor(sim: ClusterSim) {
    this.sim = sim;
    this.checker = new StepChecker(sim);
  }

  /**
   * Boots the nodes and creates the topic (`leaderOnController`: led by the controller,
   * whose own heartbeats then need no network).
   */
  static async start(
    overrides: Partial<SimConfig> = {},
    options: {
      leaderOnController?: boolean;
      /** The topic's replicas, in preference order, given the controller's id. */
      replicas?: (controller: number) => number[];
    } = {},
  ): Promise<Scenario> {
    const config = swarmConfig(1, {
      partitions: 1,
      minInsync: 2,
      faults: [],
      producers: [],
      replicaLagTimeMaxMs: 2000,
      leaderImbalanceCheckIntervalMs: 0,
      latencyMs: [0.1, 0.2],
      fsyncMs: [0.2, 0.5],
      ...overrides,
    });
    const sim = new ClusterSim(config);
    await sim.captureLogs("info");
    const s = new Scenario(sim);
    for (const m of sim.machines) sim.start(m);
    await s.runUntil(() => sim.allUp(), 60_000, "the cluster to start");
    const controller = sim.machines[0]!.parts!.store.controllerId();
    const others = sim.machines.map((m) => m.id).filter((id) => id !== controller);
    await sim.createTopic(
      controller === null
        ? undefined
        : options.replicas
        ? options.replicas(controller)
        : options.leaderOnController
        ? [controller, ...others]
        : undefined,
    );
    return s;
  }

  /** Runs events, checking invariants, until `done()` or `timeoutMs` (then throws). */
  async runUntil(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const sim = this.sim;
    const deadline = sim.now + timeoutMs;
    while (!done()) {
      if (sim.scheduler.nextEventAt() > deadline) {
        throw new SimViolation(`timed out waiting for ${what}\n${sim.formatTrace(120)}`);
      }
      await sim.scheduler.step();
      this.#check();
    }
  }

  /** Runs `ms` of virtual time, checking invariants. */
  async run(ms: number): Promise<void> {
    const sim = this.sim;
    const until = sim.now + ms;
    while (sim.scheduler.nextEventAt() <= until) {
      await sim.scheduler.step();
      this.#check();
    }
    await sim.scheduler.runUntil(until);
  }

  #check(): void {
    this.checker.check();
    const problems = [...this.checker.violations, ...this.sim.history.violations];
    if (problems.length > 0) {
      throw new SimViolation(`${problems.join("\n")}\n${this.sim.formatTrace(200)}`);
    }
  }

  /** Produces `count` unique values to `partition` (acks=all) and waits for their acks. */
  async produce(partition: number, count: number, name = `s${partition}`): Promise<void> {
    const sim = this.sim;
    const env = sim.clientEnv(name);
    const router = new Router(env);
    let stop = false;
    const acked = () => {
      let n = 0;
      for (const v of sim.history.sent.values()) {
        if (v.value.startsWith(`${name}-`) && v.acked) n++;
      }
      return n;
    };
    env.proc.schedule(0, () => {
      runProducer({ ...env, stopped: () => stop }, router, sim.history, {
        partition,
        acks: -1,
        idempotent: false,
        name,
        intervalMs: 0,
      }).catch((err) => sim.history.violations.push(`producer ${name}: ${err}`));
    });
    await this.runUntil(() => acked() >= count, 60_000, `${count} acknowledgements`);
    stop = true;
    await this.run(50);
    env.proc.kill();
  }

  /**
   * Starts an acks=1 producer to `partition` that runs until the returned function is
   * called (what it writes may be lost, by design; the checkers know acks=1).
   */
  acksOneProducer(partition: number, name = `a${partition}`): () => void {
    const sim = this.sim;
    const env = sim.clientEnv(name);
    const router = new Router(env);
    let stop = false;
    env.proc.schedule(0, () => {
      runProducer({ ...env, stopped: () => stop }, router, sim.history, {
        partition,
        acks: 1,
        idempotent: false,
        name,
        intervalMs: 20,
      }).catch((err) => sim.history.violations.push(`producer ${name}: ${err}`));
    });
    return () => {
      stop = true;
    };
  }

  /** Waits until every node runs and is unfenced in its own view. */
  async allUp(timeoutMs = 30_000): Promise<void> {
    await this.runUntil(() => this.sim.allUp(), timeoutMs, "every node to be up");
  }

  /** Every acknowledged value of `partition` that is not at its offset in the log now. */
  async missing(partition: number): Promise<string[]> {
    const final = await this.sim.runClient("reader", async (env) => {
      const router = new Router(env);
      for (let i = 0; i < 200; i++) {
        const got = await readToHighWatermark(env, router, partition);
        if (got) return got;
        await new Promise((r) => env.timers.setTimeout(() => r(undefined), 100));
      }
      return null;
    });
    if (final === null) throw new SimViolation(`partition ${partition} could not be read`);
    const out: string[] = [];
    for (const v of this.sim.history.sent.values()) {
      if (v.partition !== partition || v.acked === null || v.acks !== -1) continue;
      if (final.values.get(v.acked.offset) !== v.value) out.push(`${v.value}@${v.acked.offset}`);
    }
    return out;
  }

  close(): void {
    this.sim.close();
  }
}
