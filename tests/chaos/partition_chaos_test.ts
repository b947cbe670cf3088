/**
 * Partition chaos: three real node processes, each in a network namespace of its own
 * (`../_helpers/netns.ts`: a switch namespace routes between them; a node has one address
 * for Kafka and one for Raft, so Raft links can be cut alone), a topic with 6 partitions,
 * replication factor 3 and min.insync.replicas=2, and the acks=all producer and readers of
 * `chaos_test.ts` (`../_helpers/chaos_workload.ts`) in the root namespace, which reaches
 * every node's Kafka address whatever is cut between the nodes.
 *
 * Fault kinds (CHAOS_PARTITION_FAULTS, comma-separated, in this order by default; each is
 * held CHAOS_PARTITION_HOLD_MS, default 10 s, then healed; then the test waits until every
 * node shows every partition with a leader and a full ISR, and CHAOS_PARTITION_QUIET_MS
 * more, default 4 s):
 *
 * - `leader-isolated`: a partition leader that is not the controller is cut from both
 *   peers (all traffic, both ways);
 * - `controller-isolated`: the controller (Raft leader) is cut from both peers;
 * - `one-way`: that leader cannot send to the controller; the controller still reaches it
 *   (packets only: TCP needs both directions, so connections between them stall);
 * - `controller-raft-cut`: only the controller's Raft links are cut, both ways; its Kafka
 *   links (replica fetches, broker heartbeats, clients) still work;
 * - `flapping`: the link between that leader and the controller is cut and healed every
 *   200–500 ms;
 * - `kafka-cut` (not by default): the Kafka links between that leader and the controller
 *   are cut, both ways, their Raft link still works;
 * - `kill` (not by default): kill -9 of the leader of p0, restarted when the hold is over;
 * - `sigstop` (not by default): SIGSTOP of the leader of p0, SIGCONT when the hold is over.
 *
 * The list runs CHAOS_PARTITION_ROUNDS times (default 1: about two and a half minutes).
 * Per fault it prints the verdict of the values first sent during it (acked, lost,
 * duplicated), the longest time any partition went without an acknowledgement from the
 * fault's start to the end of its quiet time, and the failover time of each partition the
 * victim led (fault → first acknowledgement by another node), with when a node first named
 * a new leader for it and when the victim stopped claiming it (Metadata polled every
 * 100 ms). The I1 and I4 checks run
 * over the whole run: a lost acknowledged write fails the test. The gap is only printed
 * unless CHAOS_PARTITION_GAP_TARGET_MS is set: then every fault's longest gap must be
 * within it. CHAOS_PARTITION_LOG_DIR: write each node's log there at the end.
 *
 * Needs root and network namespaces: without them the test is skipped, except in CI
 * (CI=true), where it fails.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { TestCluster } from "../_helpers/cluster.ts";
import {
  ChaosWorkload,
  checkInvariants,
  type FinalLogs,
  readBack,
  reporter,
  reportRun,
  type Sent,
  sleep,
  verdict,
  verdictLine,
} from "../_helpers/chaos_workload.ts";
import { NetnsNetwork, netnsUnavailable } from "../_helpers/netns.ts";
import { ApiKey } from "../../lib/protocol/mod.ts";
import { withTimeout } from "../../lib/util/timeout.ts";

const TOPIC = "partition-chaos";
const PARTITIONS = 6;
const NODES = 3;
const env = (name: string) => Deno.env.get(name);
const IN_CI = env("CI") === "true";
const DEFAULT_FAULTS = [
  "leader-isolated",
  "controller-isolated",
  "one-way",
  "controller-raft-cut",
  "flapping",
];
const FAULT_KINDS = [...DEFAULT_FAULTS, "kafka-cut", "kill", "sigstop"];
const FAULTS = (env("CHAOS_PARTITION_FAULTS") ?? DEFAULT_FAULTS.join(","))
  .split(",").map((f) => f.trim()).filter(Boolean);
const ROUNDS = Number(env("CHAOS_PARTITION_ROUNDS") ?? "1");
const HOLD_MS = Number(env("CHAOS_PARTITION_HOLD_MS") ?? "10000");
const QUIET_MS = Number(env("CHAOS_PARTITION_QUIET_MS") ?? "4000");
/** Off unless set: the longest per-partition gap every fault must stay within. */
const GAP_TARGET_MS = env("CHAOS_PARTITION_GAP_TARGET_MS")
  ? Number(env("CHAOS_PARTITION_GAP_TARGET_MS"))
  : null;
const LOG_DIR = env("CHAOS_PARTITION_LOG_DIR") ?? null;
const FLAP_MIN_MS = 200;
const FLAP_MAX_MS = 500;
const HEAL_TIMEOUT_MS = 30_000;
const WATCH_INTERVAL_MS = 100;

for (const f of FAULTS) {
  if (!FAULT_KINDS.includes(f)) {
    throw new TypeError(`Unknown fault kind "${f}" in CHAOS_PARTITION_FAULTS: ${FAULT_KINDS}`);
  }
}

const unavailable = await netnsUnavailable();
if (unavailable !== null && !IN_CI) {
  // deno-lint-ignore no-console -- tell the person running tests why one was skipped
  console.error(`Skipping the partition chaos test: ${unavailable} (in CI it fails instead)`);
}

const report = reporter("partition");
const say = report.say;

/** One node's view of a partition. */
interface PartitionView {
  leader: number;
  epoch: number;
  isr: number[];
}

/** One node's view of the topic and the cluster. */
interface View {
  controller: number;
  partitions: Map<number, PartitionView>;
}

/** One injected fault, with what is needed to judge the values sent during it. */
interface FaultRun {
  kind: string;
  label: string;
  at: number;
  healedAt: number;
  /** End of the quiet time after it (the window of its figures is [at, end)). */
  end: number;
  /** partition → leader when the fault began. */
  leadersAtStart: Map<number, number>;
  /** The node expected to lose its leaderships (the partitions it led fail over). */
  victim: number;
  /** partition the victim led → ms until another node named a newer leader. */
  electedMs: Map<number, number>;
  /** partition the victim led → ms until the victim itself stopped claiming it. */
  resignedMs: Map<number, number>;
  /** Heal → every node shows every partition with a leader and a full ISR; null: never. */
  healMs: number | null;
}

/**
 * The longest stretch without an ack in [from, to] and when it began (a stretch still open
 * at `to` ends there: the next fault may begin right after).
 */
function longestGap(ackTimes: number[], from: number, to: number): { ms: number; at: number } {
  let prev = from;
  let longest = { ms: 0, at: from };
  const stretch = (end: number) => {
    if (end - prev > longest.ms) longest = { ms: end - prev, at: prev };
  };
  for (const at of ackTimes) {
    if (at <= from) continue;
    if (at >= to) break;
    stretch(at);
    prev = at;
  }
  stretch(to);
  return longest;
}

/** Figures of one fault, computed once the run is over. */
function faultFigures(f: FaultRun, sent: Sent[], final: FinalLogs) {
  const during = sent.filter((s) => s.sentAt >= f.at && s.sentAt < f.end);
  const gaps = new Map<number, { ms: number; at: number }>();
  for (let p = 0; p < PARTITIONS; p++) {
    const times = sent.filter((s) => s.partition === p && s.acked !== null)
      .map((s) => s.acked!.at).sort((a, b) => a - b);
    gaps.set(p, longestGap(times, f.at, f.end));
  }
  const [worst, longestAt] = [...gaps].reduce((a, b) => (b[1].ms > a[1].ms ? b : a));
  const longest = longestAt.ms;
  const longestFrom = longestAt.at - f.at;
  const failover = new Map<number, { ms: number; node: number } | null>();
  for (const [p, leader] of f.leadersAtStart) {
    if (leader !== f.victim) continue;
    const first = sent.filter((s) =>
      s.partition === p && s.acked !== null && s.acked.at >= f.at && s.acked.at < f.end &&
      s.acked.node !== leader
    ).map((s) =>
      s.acked!
    ).sort((a, b) => a.at - b.at)[0];
    failover.set(p, first === undefined ? null : { ms: first.at - f.at, node: first.node });
  }
  return {
    verdict: verdict(during, final, report.started),
    gaps,
    worst,
    longest,
    longestFrom,
    failover,
  };
}

Deno.test({
  name:
    "partition chaos: cut, one-way and flapping links under an acks=all producer keep I1 and I4",
  ignore: unavailable !== null && !IN_CI,
  // Connections are dropped without waiting, and timers race replies by design.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (unavailable !== null) {
      throw new Error(`Cannot run the partition chaos test in CI: ${unavailable}`);
    }
    await using net = await NetnsNetwork.create(NODES);
    say(
      `namespaces ${net.prefix}-sw (switch) and ${net.prefix}-n1..n${NODES}; Kafka on ` +
        `10.${net.octet}.N.10, Raft on 10.${net.octet}.N.20; 0 s is ${
          new Date(Date.now() - report.elapsed()).toISOString()
        } (node logs are in UTC)`,
    );
    await using cluster = await TestCluster.start({ size: NODES, network: net });
    const ids = cluster.nodes.map((n) => n.id);
    const stopped = new Set<number>(); // killed or paused by a fault right now
    await cluster.createTopic(TOPIC, PARTITIONS, NODES, { "min.insync.replicas": "2" });
    const workload = new ChaosWorkload(cluster, { topic: TOPIC, partitions: PARTITIONS });
    const router = workload.router;

    /** Node `id`'s view (its own image, stale if it is cut off). */
    const view = async (id: number, user = "view"): Promise<View> => {
      const conn = await router.connection(user, id);
      const md = await withTimeout(
        conn.request(ApiKey.Metadata, 12, { topics: [{ name: TOPIC }] }),
        2000,
        () => router.drop(user, id),
      );
      const topic = md.topics.find((tp) => tp.name === TOPIC);
      const partitions = new Map<number, PartitionView>();
      for (const p of topic?.partitions ?? []) {
        partitions.set(p.partitionIndex, {
          leader: p.leaderId,
          epoch: p.leaderEpoch,
          isr: [...p.isrNodes],
        });
      }
      return { controller: md.controllerId, partitions };
    };
    /** The view every node agrees on, once every partition has a leader and a full ISR. */
    const healthyView = async (): Promise<View | null> => {
      const views = await Promise.all(ids.map((id) => view(id))).catch(() => null);
      if (views === null) return null;
      const first = views[0]!;
      const same = (v: View) =>
        v.controller === first.controller && v.controller >= 0 &&
        v.partitions.size === PARTITIONS &&
        [...v.partitions].every(([p, s]) =>
          s.leader >= 0 && s.isr.length === NODES && s.leader === first.partitions.get(p)?.leader
        );
      return views.every(same) ? first : null;
    };
    const waitHealthy = async (): Promise<{ view: View; ms: number } | null> => {
      const since = performance.now();
      const healthy = await cluster.waitFor("every node healthy", healthyView, HEAL_TIMEOUT_MS, 100)
        .catch(() => null);
      return healthy === null ? null : { view: healthy, ms: performance.now() - since };
    };

    /**
     * Polls every node's view until the returned stop() is called, noting per partition the
     * victim led when another node first names a newer leader, and when the victim itself
     * stops claiming it.
     */
    const watchLeaders = (fault: FaultRun) => {
      let watching = true;
      const victimLed = [...fault.leadersAtStart].filter(([, l]) => l === fault.victim);
      const startEpochs = new Map<number, number>();
      const loop = (async () => {
        while (watching) {
          const next = sleep(WATCH_INTERVAL_MS);
          await Promise.all(
            ids.filter((id) => !stopped.has(id)).map(async (id) => {
              const v = await view(id, "watch").catch(() => null);
              const ms = performance.now() - fault.at;
              for (const [p] of victimLed) {
                const s = v?.partitions.get(p);
                if (s === undefined) continue;
                if (!startEpochs.has(p) && s.leader === fault.victim) startEpochs.set(p, s.epoch);
                const newer = s.leader !== fault.victim && s.epoch > (startEpochs.get(p) ?? -1);
                if (id !== fault.victim && newer && !fault.electedMs.has(p)) {
                  fault.electedMs.set(p, ms);
                }
                if (id === fault.victim && s.leader !== fault.victim && !fault.resignedMs.has(p)) {
                  fault.resignedMs.set(p, ms);
                }
              }
            }),
          );
          await next;
        }
      })();
      return async () => {
        watching = false;
        await loop;
      };
    };

    await router.refresh();
    const faults: FaultRun[] = [];
    const problems: string[] = [];
    workload.start();

    /** A leader that is not the controller, and a partition it leads (else any other node). */
    const leaderNotController = (v: View) => {
      const led = [...v.partitions].find(([, s]) => s.leader !== v.controller);
      return led
        ? { node: led[1].leader, partition: led[0] }
        : { node: ids.find((id) => id !== v.controller)!, partition: -1 };
    };
    const led = (v: View, node: number) =>
      [...v.partitions].filter(([, s]) => s.leader === node).map(([p]) => `p${p}`).join(" ") ||
      "nothing";

    /** The victim of each kind, as the view at its start names it. */
    const victimOf = (kind: string, v: View) => {
      switch (kind) {
        case "controller-isolated":
        case "controller-raft-cut":
          return v.controller;
        case "kill":
        case "sigstop":
          return v.partitions.get(0)!.leader;
        default:
          return leaderNotController(v).node;
      }
    };

    /** Cuts per kind; each resolves once the fault is healed. */
    const inject = async (kind: string, v: View, fault: FaultRun) => {
      const c = v.controller;
      const l = leaderNotController(v);
      const p0 = v.partitions.get(0)!.leader;
      const hold = () => sleep(HOLD_MS);
      switch (kind) {
        case "leader-isolated":
          fault.label = `node ${l.node} (leads ${
            led(v, l.node)
          }; controller ${c}) cut from both peers`;
          say(`${fault.label}`);
          await net.isolate(l.node);
          await hold();
          await net.heal();
          break;
        case "controller-isolated":
          fault.label = `controller ${c} (leads ${led(v, c)}) cut from both peers`;
          say(fault.label);
          await net.isolate(c);
          await hold();
          await net.heal();
          break;
        case "one-way":
          fault.label =
            `node ${l.node} (leads ${led(v, l.node)}) cannot send to controller ${c}; ` +
            `${c} can still send to ${l.node}`;
          say(fault.label);
          await net.block(l.node, c);
          await hold();
          await net.heal();
          break;
        case "controller-raft-cut":
          fault.label = `controller ${c} (leads ${led(v, c)}) cut from its Raft peers only ` +
            `(Kafka links intact)`;
          say(fault.label);
          await net.isolate(c, "raft");
          await hold();
          await net.heal();
          break;
        case "kafka-cut":
          fault.label = `Kafka links between node ${l.node} (leads ${led(v, l.node)}) and ` +
            `controller ${c} cut (Raft links intact)`;
          say(fault.label);
          await net.cut(l.node, c, "kafka");
          await hold();
          await net.heal();
          break;
        case "flapping": {
          fault.label = `link between node ${l.node} (leads ${led(v, l.node)}) and controller ` +
            `${c} flapping every ${FLAP_MIN_MS}-${FLAP_MAX_MS} ms`;
          say(fault.label);
          const until = performance.now() + HOLD_MS;
          let flaps = 0;
          const phase = () => sleep(FLAP_MIN_MS + Math.random() * (FLAP_MAX_MS - FLAP_MIN_MS));
          while (performance.now() < until) {
            await net.cut(l.node, c);
            flaps++;
            await phase();
            await net.heal();
            await phase();
          }
          say(`${flaps} cuts`);
          break;
        }
        case "kill":
          fault.label = `kill -9 node ${p0} (leads ${led(v, p0)}; controller ${c})`;
          say(fault.label);
          stopped.add(p0);
          await cluster.kill(p0);
          await hold();
          await cluster.restart(p0);
          stopped.delete(p0);
          break;
        case "sigstop":
          fault.label = `SIGSTOP node ${p0} (leads ${led(v, p0)}; controller ${c})`;
          say(fault.label);
          stopped.add(p0);
          cluster.pause(p0);
          await hold();
          cluster.resume(p0);
          stopped.delete(p0);
          break;
      }
    };

    await t.step(
      `${FAULTS.join(", ")} × ${ROUNDS}, each held ${HOLD_MS} ms, under the producer`,
      async () => {
        try {
          await sleep(QUIET_MS); // some data in every partition before the first fault
          let start = await waitHealthy();
          for (let round = 1; round <= ROUNDS; round++) {
            for (const kind of FAULTS) {
              if (start === null) {
                problems.push(`before ${kind} (round ${round}): the cluster is not healthy`);
                start = await waitHealthy();
                if (start === null) return;
              }
              const v = start.view;
              const fault: FaultRun = {
                kind,
                label: kind,
                at: performance.now(),
                healedAt: Infinity,
                end: Infinity,
                leadersAtStart: new Map([...v.partitions].map(([p, s]) => [p, s.leader])),
                victim: victimOf(kind, v),
                electedMs: new Map(),
                resignedMs: new Map(),
                healMs: null,
              };
              faults.push(fault);
              say(
                `(${kind}, round ${round}) controller ${v.controller}, leaders ${
                  JSON.stringify(Object.fromEntries(fault.leadersAtStart))
                }`,
              );
              const stopWatching = watchLeaders(fault);
              try {
                await inject(kind, v, fault);
              } finally {
                await net.heal();
                await stopWatching();
              }
              fault.healedAt = performance.now();
              start = await waitHealthy();
              fault.healMs = start?.ms ?? null;
              say(
                `(${kind}) healed; every node healthy ${
                  start === null ? "never" : `${start.ms.toFixed(0)} ms`
                } after the heal`,
              );
              if (start === null) problems.push(`${fault.label}: not healthy after the heal`);
              await sleep(QUIET_MS);
              fault.end = performance.now();
              if (start !== null) start = await waitHealthy();
            }
          }
        } finally {
          await net.heal().catch(() => {});
          for (const id of stopped) {
            if (cluster.node(id).process === null) await cluster.restart(id).catch(() => {});
            else cluster.resume(id);
          }
          await workload.stop();
        }
      },
    );

    let final: FinalLogs | null = null;
    await t.step("the cluster heals: every partition has a leader and a full ISR", async () => {
      const healthy = await waitHealthy();
      if (healthy === null) problems.push("after the faults: not healthy");
      final = await readBack(cluster, workload, async (p) => {
        const leaders = (await Promise.all(ids.map((id) => view(id).catch(() => null))))
          .map((x) => x?.partitions.get(p)).filter((x) => x !== undefined && x.leader >= 0);
        // The leader with the highest epoch any node reports.
        return leaders.sort((a, b) => b!.epoch - a!.epoch)[0]?.leader ?? -1;
      });
    });
    assert.ok(final !== null, "the topic was read back");
    const finalLogs: FinalLogs = final;
    await checkInvariants(t, workload, finalLogs, report.started);

    reportRun(workload, finalLogs, report);
    const figures = faults.map((f) => ({ f, ...faultFigures(f, workload.sent, finalLogs) }));
    for (const { f, verdict: v, gaps, worst, longest, longestFrom, failover } of figures) {
      say(`fault ${f.kind}: ${f.label}`);
      say(`  ${f.kind} values: ${verdictLine(v)}`);
      say(
        `  ${f.kind} longest gap without acks: ${longest.toFixed(0)} ms (p${worst}, from ${
          longestFrom.toFixed(0)
        } ms into the fault); per partition ${
          [...gaps].map(([p, g]) => `p${p} ${g.ms.toFixed(0)}`).join(", ")
        } ms`,
      );
      const ms = (x: number | undefined) => x === undefined ? "never" : `${x.toFixed(0)} ms`;
      const times = [...failover].map(([p, first]) =>
        `p${p} ${
          first === null
            ? `none (stayed on node ${f.victim})`
            : `${first.ms.toFixed(0)} ms (node ${first.node}${
              first.ms > f.healedAt - f.at ? ", after the heal" : ""
            })`
        } [new leader named ${ms(f.electedMs.get(p))}, node ${f.victim} stopped claiming it ${
          ms(f.resignedMs.get(p))
        }]`
      );
      say(
        `  ${f.kind} failover from node ${f.victim} (cut for ${
          (f.healedAt - f.at).toFixed(0)
        } ms): ${times.join(", ") || "it led nothing"}`,
      );
      say(
        `  ${f.kind} healed: ${
          f.healMs === null ? "never" : `${f.healMs.toFixed(0)} ms`
        } from heal to healthy`,
      );
      for (const lost of v.lost.slice(0, 5)) say(`  ${f.kind} LOST ${lost}`);
    }
    for (const p of problems) say(`PROBLEM: ${p}`);
    router.close();

    if (LOG_DIR !== null) {
      await Deno.mkdir(LOG_DIR, { recursive: true });
      for (const id of ids) {
        if (cluster.node(id).process !== null) await cluster.kill(id);
        await Deno.writeTextFile(join(LOG_DIR, `node-${id}.log`), await cluster.output(id));
      }
      say(`node logs in ${LOG_DIR}`);
    }

    await t.step("every fault healed: all nodes agree on a leader and a full ISR after it", () => {
      assert.deepEqual(problems, []);
      assert.ok(workload.sent.some((s) => s.acked !== null), "something was acknowledged");
    });

    if (GAP_TARGET_MS !== null) {
      await t.step(`every fault's longest gap without acks is within ${GAP_TARGET_MS} ms`, () => {
        const over = figures.filter((x) => x.longest > GAP_TARGET_MS)
          .map((x) => `${x.f.kind}: ${x.longest.toFixed(0)} ms (p${x.worst})`);
        assert.deepEqual(over, []);
      });
    }
  },
});
