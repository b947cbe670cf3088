/**
 * The fault schedule of a run: every so often (the config's mean gap, jittered) one fault
 * of the kinds the seed enabled, against a node chosen at random or by role (a partition
 * leader, the controller), lasting a random while, then undone. Faults may overlap, but at
 * most two at a time, so that quiet periods exist in which the cluster must make progress.
 *
 * Menu (see {@linkcode FaultKind}): kill -9 and restart; power loss (unsynced writes
 * lost) and restart; SIGSTOP/SIGCONT; isolation from everyone, or from the other nodes
 * only (clients still reach it); the Raft links only, Kafka up; a one-way cut; a
 * flapping link; a slow disk (fsync 20-800 ms); a failing disk (fsync errors); a
 * controlled shutdown (SIGTERM) and restart; lossy links (retransmissions).
 */
import type { ClusterSim, FaultKind, Machine } from "./cluster_sim.ts";
import { RAFT_PORT } from "./cluster_sim.ts";

/** A running fault: undo() ends it. */
interface ActiveFault {
  kind: FaultKind;
  undo: () => void;
}

/** Plays the fault schedule on `sim` until `untilMs`. */
export class Nemesis {
  readonly #sim: ClusterSim;
  readonly #active = new Set<ActiveFault>();
  /** Faults injected, by kind. */
  readonly counts = new Map<FaultKind, number>();
  /** When each fault was injected and undone (Infinity: still on when the run healed). */
  readonly windows: { kind: FaultKind; start: number; end: number }[] = [];

  constructor(sim: ClusterSim) {
    this.#sim = sim;
  }

  /** Schedules the next fault after a random gap, on the harness's own timeline. */
  start(untilMs: number): void {
    const sim = this.#sim;
    const next = () => {
      if (sim.now >= untilMs) return;
      if (this.#active.size < 2) this.#inject();
      const gap = sim.config.faultGapMs * (0.5 + sim.random.float());
      sim.scheduler.schedule(null, gap, next);
    };
    sim.scheduler.schedule(null, sim.config.faultGapMs * sim.random.float(), next);
  }

  /** Ends every active fault now (the liveness phase heals the rest). */
  stop(): void {
    for (const f of [...this.#active]) f.undo();
    this.#active.clear();
  }

  #later(ms: number, fault: ActiveFault): void {
    const window = { kind: fault.kind, start: this.#sim.now, end: Infinity };
    this.windows.push(window);
    const undo = fault.undo;
    fault.undo = () => {
      window.end = this.#sim.now;
      undo();
    };
    this.#active.add(fault);
    this.#sim.scheduler.schedule(null, ms, () => {
      if (!this.#active.delete(fault)) return;
      fault.undo();
    });
  }

  /** A node to hit: often a leader or the controller, since that is where bugs hide. */
  #victim(): Machine {
    const sim = this.#sim;
    const up = sim.machines.filter((m) => m.node !== null);
    const r = sim.random.float();
    if (up.length > 0 && r < 0.35) {
      const anyUp = up[0]!.node!.internals.store;
      const controller = anyUp.controllerId();
      const m = sim.machines.find((x) => x.id === controller);
      if (m) return m;
    }
    if (up.length > 0 && r < 0.7) {
      const leaders = up.filter((m) =>
        [...m.node!.internals.replicas.partitions()].some((p) => p.isLeader)
      );
      if (leaders.length > 0) return sim.random.pick(leaders);
    }
    return sim.random.pick(sim.machines);
  }

  #inject(): void {
    const sim = this.#sim;
    const kind = sim.random.pick(sim.config.faults);
    const m = this.#victim();
    const others = sim.machines.filter((x) => x !== m);
    const hold = 300 + sim.random.float() * 5000;
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    const name = `n${m.id}`;
    switch (kind) {
      case "kill":
      case "powerLoss": {
        if (m.proc === null) return;
        sim.crash(m, kind === "powerLoss");
        this.#later(hold, {
          kind,
          undo: () => {
            if (m.proc === null && m.down !== "shutdown") sim.start(m);
          },
        });
        return;
      }
      case "shutdown": {
        if (m.node === null) return;
        sim.shutdown(m);
        this.#later(hold, {
          kind,
          undo: () => {
            if (m.proc === null) sim.start(m);
            else {
              // Still shutting down: start it once it has exited.
              const proc = m.proc;
              const wait = () => {
                if (m.proc === proc && proc.state !== "dead") {
                  sim.scheduler.schedule(null, 100, wait);
                } else if (m.proc === null || m.proc.state === "dead") sim.start(m);
              };
              wait();
            }
          },
        });
        return;
      }
      case "pause": {
        const proc = m.proc;
        if (proc === null || proc.state !== "running") return;
        sim.note("sim", `SIGSTOP ${name} for ${hold.toFixed(0)} ms`);
        proc.pause();
        const d = sim.disturb("SIGSTOP", [m.id]);
        this.#later(hold, {
          kind,
          undo: () => {
            sim.note("sim", `SIGCONT ${name}`);
            proc.resume();
            sim.undisturb(d, 1000);
          },
        });
        return;
      }
      case "isolate":
      case "isolateFromPeers": {
        const peers = kind === "isolate"
          ? [...others.map((o) => `n${o.id}`), "clients"]
          : others.map((o) => `n${o.id}`);
        sim.note("sim", `cut ${name} from ${peers.join(",")} for ${hold.toFixed(0)} ms`);
        for (const p of peers) {
          sim.net.cut(name, p);
          sim.net.cut(p, name);
        }
        const d = sim.disturb(kind, sim.machines.map((x) => x.id));
        this.#later(hold, {
          kind,
          undo: () => {
            sim.undisturb(d, 3000);
            sim.note("sim", `heal ${name}`);
            for (const p of peers) {
              sim.net.heal(name, p);
              sim.net.heal(p, name);
            }
          },
        });
        return;
      }
      case "cutRaft": {
        sim.note("sim", `cut the Raft links of ${name} for ${hold.toFixed(0)} ms (Kafka up)`);
        for (const o of others) {
          sim.net.cut(name, `n${o.id}`, RAFT_PORT);
          sim.net.cut(`n${o.id}`, name, RAFT_PORT);
        }
        const d = sim.disturb(kind, sim.machines.map((x) => x.id));
        this.#later(hold, {
          kind,
          undo: () => {
            sim.undisturb(d, 3000);
            sim.note("sim", `heal the Raft links of ${name}`);
            for (const o of others) {
              sim.net.heal(name, `n${o.id}`, RAFT_PORT);
              sim.net.heal(`n${o.id}`, name, RAFT_PORT);
            }
          },
        });
        return;
      }
      case "oneWay": {
        const to = sim.random.chance(0.2) ? "clients" : `n${sim.random.pick(others).id}`;
        const [a, b] = sim.random.chance(0.5) ? [name, to] : [to, name];
        sim.note("sim", `cut ${a} → ${b} only, for ${hold.toFixed(0)} ms`);
        sim.net.cut(a, b);
        const d = sim.disturb(kind, sim.machines.map((x) => x.id));
        this.#later(hold, {
          kind,
          undo: () => {
            sim.undisturb(d, 3000);
            sim.note("sim", `heal ${a} → ${b}`);
            sim.net.heal(a, b);
          },
        });
        return;
      }
      case "flap": {
        const other = `n${sim.random.pick(others).id}`;
        const period = 100 + sim.random.float() * 400;
        sim.note(
          "sim",
          `flap ${name} ↔ ${other} every ${period.toFixed(0)} ms for ${hold.toFixed(0)} ms`,
        );
        let cut = false;
        let on = true;
        const toggle = () => {
          if (!on) return;
          cut = !cut;
          if (cut) {
            sim.net.cut(name, other);
            sim.net.cut(other, name);
          } else {
            sim.net.heal(name, other);
            sim.net.heal(other, name);
          }
          sim.scheduler.schedule(null, period * (0.5 + sim.random.float()), toggle);
        };
        toggle();
        const d = sim.disturb(kind, sim.machines.map((x) => x.id));
        this.#later(hold, {
          kind,
          undo: () => {
            sim.undisturb(d, 3000);
            on = false;
            sim.net.heal(name, other);
            sim.net.heal(other, name);
          },
        });
        return;
      }
      case "slowDisk": {
        const slow: [number, number] = [20, 20 + sim.random.float() * 780];
        sim.note(
          "sim",
          `slow disk on ${name} (fsync ${slow[0]}-${slow[1].toFixed(0)} ms) for ${
            hold.toFixed(0)
          } ms`,
        );
        sim.setSlowDisk(m, slow);
        // Excuses only the fencing of this node after it lost the controller role (a Raft
        // leader whose fsyncs take most of a second loses its quorum, and then learns of
        // the new controller late); see StepChecker.
        const d = sim.disturb("slowDisk", [m.id]);
        this.#later(hold, {
          kind,
          undo: () => {
            sim.setSlowDisk(m, null);
            sim.undisturb(d, 2000);
          },
        });
        return;
      }
      case "failingDisk": {
        const rate = sim.random.pick([0.05, 0.3, 1]);
        sim.note(
          "sim",
          `failing disk on ${name} (fsync fails with p=${rate}) for ${hold.toFixed(0)} ms`,
        );
        sim.setFailingDisk(m, rate);
        this.#later(hold, { kind, undo: () => sim.setFailingDisk(m, 0) });
        return;
      }
      case "lossyLinks": {
        const rate = sim.random.pick([0.01, 0.05, 0.2]);
        sim.note("sim", `segment loss ${rate} on every link for ${hold.toFixed(0)} ms`);
        sim.setLoss(rate);
        const d = sim.disturb(kind, "all");
        this.#later(hold, {
          kind,
          undo: () => {
            sim.setLoss(0);
            sim.undisturb(d, 3000);
          },
        });
        return;
      }
    }
  }
}
