/**
 * Transactional chaos (issue 13): three real node processes, a topic with 6 partitions,
 * replication factor 3 and min.insync.replicas=2, Kafka's Java clients (`TxnChaos` in
 * tests/interop/java; the client whose transactional behaviour is the reference) and the
 * fault schedule of `chaos_test.ts`, with the transaction coordinator as a target too.
 *
 * Workload (one JVM): PRODUCERS transactional producers (`txn-0`…): transaction k of
 * producer id writes `t<id>-<k>-<i>` (i < RECORDS_PER_TXN) to partition (k + i) % 6, every
 * ABORT_EVERY-th one aborted on purpose after its records were written; a
 * consume-transform-produce stage (`txn-copier`, read_committed, group GROUP) copies each
 * record (p, o, v) of the topic to partition p of OUT as `c|p|o|v` with its consumed
 * offsets sent to the same transaction (every 7th aborted on purpose, then rewound to the
 * group's committed offsets); and a read_committed reader of both topics throughout.
 *
 * Faults, repeated while time is left (TXN_CHAOS_SECONDS, default 45): (a) kill -9 the
 * leader of partition 0, restarted 5 s later; (t) kill -9 the transaction coordinator of
 * `txn-0` (the leader of its `__transaction_state` partition), restarted 5 s later; (b)
 * SIGSTOP the transaction coordinator of `txn-copier` for 4 s (it is replaced, then comes
 * back as a zombie that must be fenced); (c) kill -9 two nodes at once (the metadata quorum
 * and min.insync are lost), restarted 3 s later. After each, until every node is back in
 * every ISR of both topics and of `__transaction_state`.
 *
 * Then everything is read back, read_committed and read_uncommitted, once no transaction
 * is open, and checked for Jepsen's Kafka anomalies in transactional form:
 * - every transaction the producer saw commit is wholly visible, each record at the offset
 *   its send was acknowledged with (no lost write, no partial commit);
 * - no aborted transaction, nor one that failed before its commit was asked for, is
 *   visible, even partly (no aborted read), to the final reader or to the live one; a
 *   transaction whose commit outcome is unknown is all or nothing;
 * - no record is stored twice (no duplicate), nothing nobody wrote is visible;
 * - per partition, reads come in offset order (final and live reader), each live read is
 *   what the final log holds at that offset, and a producer's transactions are in its
 *   order (internal/external nonmonotonic);
 * - every partition's last stable offset reaches its high watermark (no hanging
 *   transaction);
 * - consume-transform-produce is exactly once: the copies in OUT are exactly the input
 *   records below the group's committed offsets, each once, in order.
 *
 * Prints the fault timeline, the transactions committed/aborted/failed/unknown, records,
 * copies, and the time from each fault to the next commit. On a failure the node logs and
 * the client's stderr are kept (the directory is printed); TXN_CHAOS_LOG_DIR keeps them
 * always.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { TestCluster } from "../_helpers/cluster.ts";
import { reporter, sleep } from "../_helpers/chaos_workload.ts";
import { needsJava, runJava, spawnJava } from "../_helpers/java.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { withTimeout } from "../../lib/util/timeout.ts";

const TOPIC = "txn-chaos";
const OUT = "txn-chaos-out";
const GROUP = "txn-chaos-copier";
const TXN_TOPIC = "__transaction_state";
const PARTITIONS = 6;
const PRODUCERS = 3;
const RECORDS_PER_TXN = 4;
const ABORT_EVERY = 5;
const CHAOS_MS = Number(Deno.env.get("TXN_CHAOS_SECONDS") ?? "45") * 1000;
const KILLED_FOR_MS = 5000;
const PAUSE_MS = 4000;
const BOTH_KILLED_FOR_MS = 3000;
const GAP_MS = 3000;
const HEAL_MS = 5000;
const REJOIN_TIMEOUT_MS = 30_000;
const CLASS = "dev.tidelog.interop.TxnChaos";

const report = reporter("txn-chaos");
const say = report.say;

type Outcome = "committed" | "aborted" | "failed" | "unknown";

interface TxnEvent {
  ev: "txn";
  id: number;
  k: number;
  outcome: Outcome;
  why: string | null;
  recs: { p: number; v: string; o: number }[];
  ms: number;
}
interface CopyEvent {
  ev: "copy";
  k: number;
  outcome: Outcome;
  why: string | null;
  inputs: [number, number][];
  ms: number;
}
interface RecordEvent {
  ev: "read" | "final" | "raw";
  t: string;
  p: number;
  o: number;
  v: string;
}
type Event =
  | TxnEvent
  | CopyEvent
  | RecordEvent
  | { ev: "committed"; t: string; p: number; o: number }
  | { ev: "stable"; ms: number; open: Record<string, string> }
  | { ev: "error"; who: string; op: string; what: string }
  | { ev: "reader-error"; what: string; partitions?: string }
  | { ev: "stopped"; stuck: string[] }
  | { ev: "ready" | "replaced" | "assigned" | "revoked"; who: string }
  | { ev: "stopping" | "done" };

/** An event with the time it arrived (ms since the test began). */
type Timed<E> = E & { at: number };

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

function parseEvents(text: string): Event[] {
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Event);
}

const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
const recordKey = (t: string, p: number, o: number) => `${t}/${p}@${o}`;

interface Fault {
  label: string;
  at: number;
  /** ms from the fault to the first commit of a transaction begun after it. */
  nextCommitMs: number | null;
}

Deno.test({
  name: "txn chaos: transactions under kill -9 (leaders, coordinators), SIGSTOP and double " +
    "kills stay atomic, exactly once, and in order",
  ...needsJava(),
  // Connections are dropped without waiting, and timers race replies by design.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using cluster = await TestCluster.start({ size: 3 });
    const ids = cluster.nodes.map((n) => n.id);
    const logs: { name: string; text: Promise<string> }[] = [];
    const down = new Set<number>();
    const paused = new Set<number>();
    const live = () => ids.filter((id) => !down.has(id));
    const upSince = new Map(ids.map((id) => [id, 0]));
    // A node that has just come back answers from an old image for a moment.
    const steadiest = () => live().sort((a, b) => upSince.get(a)! - upSince.get(b)!)[0] ?? ids[0]!;
    const problems: string[] = [];
    const faults: Fault[] = [];

    /** Kills node `id` and keeps the log of the process that died. */
    const kill = async (id: number) => {
      await cluster.kill(id);
      logs.push({ name: `node-${id}-${logs.length}`, text: cluster.output(id) });
    };

    const partitionStates = async (topic: string) => {
      const res = await withTimeout(cluster.metadata(steadiest(), [topic]), 3000);
      const states = new Map<number, { leader: number; isr: number[] }>();
      for (const p of res.topics.find((tp) => tp.name === topic)?.partitions ?? []) {
        states.set(p.partitionIndex, { leader: p.leaderId, isr: [...p.isrNodes] });
      }
      return states;
    };
    /** The transaction coordinator of `txnId`, as a live node answers FindCoordinator. */
    const coordinatorOf = async (txnId: string): Promise<number> => {
      const conn = await cluster.connect(steadiest());
      try {
        const res = await withTimeout(
          conn.request(ApiKey.FindCoordinator, 4, {
            key: "",
            keyType: 1,
            coordinatorKeys: [txnId],
          }),
          3000,
        );
        const c = res.coordinators[0];
        return c && c.errorCode === ErrorCode.NONE ? c.nodeId : -1;
      } finally {
        await conn.close();
      }
    };
    const waitRejoined = async (label: string, node: number, since: number) => {
      try {
        await cluster.waitFor(
          `node ${node} in every ISR`,
          async () => {
            for (
              const [topic, count] of [[TOPIC, PARTITIONS], [OUT, PARTITIONS], [TXN_TOPIC, 50]]
            ) {
              const states = await partitionStates(topic as string);
              if (states.size !== count) return false;
              for (const s of states.values()) {
                if (s.leader < 0 || !s.isr.includes(node)) return false;
              }
            }
            return true;
          },
          REJOIN_TIMEOUT_MS,
          200,
        );
        say(
          `${label}: node ${node} in every ISR ${(performance.now() - since).toFixed(0)} ms later`,
        );
      } catch (err) {
        problems.push(`${label}: node ${node} did not rejoin every ISR: ${(err as Error).message}`);
      }
    };

    await cluster.createTopic(TOPIC, PARTITIONS, 3, { "min.insync.replicas": "2" });
    await cluster.createTopic(OUT, PARTITIONS, 3, { "min.insync.replicas": "2" });

    // The workload: its events arrive while the faults run.
    const runEvents: Timed<Event>[] = [];
    const child = await spawnJava(CLASS, [
      "run",
      cluster.bootstrap(),
      TOPIC,
      OUT,
      GROUP,
      String(PARTITIONS),
      String(PRODUCERS),
      String(RECORDS_PER_TXN),
      String(ABORT_EVERY),
    ], { jvmArgs: ["-Xmx512m"] });
    const clientStderr = new Response(child.stderr).text();
    logs.push({ name: "client-run", text: clientStderr });
    const stdin = child.stdin.getWriter();
    let committedSoFar = 0;
    const reading = (async () => {
      for await (const line of lines(child.stdout)) {
        if (!line.startsWith("{")) continue;
        const e = { ...JSON.parse(line) as Event, at: report.elapsed() } as Timed<Event>;
        runEvents.push(e);
        if (e.ev === "txn" && e.outcome === "committed") {
          committedSoFar++;
          for (const f of faults) {
            const begun = e.at - e.ms;
            if (f.nextCommitMs === null && begun >= f.at) f.nextCommitMs = e.at - f.at;
          }
        }
        if (e.ev === "error" && e.op === "fatal") say(`client: ${e.who} gave up: ${e.what}`);
      }
    })();
    const exited = child.status;

    const results: boolean[] = [];
    results.push(
      await t.step("the clients start: every producer and the copier commit", async () => {
        await cluster.waitFor(
          "every producer and the copier to commit",
          () => {
            const committers = new Set(
              runEvents.flatMap((e) =>
                e.ev === "txn" && e.outcome === "committed"
                  ? [`p${e.id}`]
                  : e.ev === "copy" && e.outcome === "committed"
                  ? ["copier"]
                  : []
              ),
            );
            return Promise.resolve(committers.size === PRODUCERS + 1);
          },
          90_000,
          200,
        );
        say(`clients running: ${committedSoFar} transactions committed so far`);
      }),
    );

    const recordFault = (label: string): Fault => {
      const f: Fault = { label, at: report.elapsed(), nextCommitMs: null };
      faults.push(f);
      say(label);
      return f;
    };

    const killAndRestart = async (label: string, victim: number, forMs: number) => {
      recordFault(label);
      down.add(victim);
      await kill(victim);
      await sleep(forMs);
      const restartAt = performance.now();
      await cluster.restart(victim);
      upSince.set(victim, performance.now());
      down.delete(victim);
      await waitRejoined(label, victim, restartAt);
    };

    const faultA = async (cycle: number) => {
      const leader = (await partitionStates(TOPIC)).get(0)?.leader ?? -1;
      if (leader < 0) return say(`(a${cycle}) partition 0 has no leader; skipped`);
      await killAndRestart(
        `(a${cycle}) kill -9 node ${leader}, leader of ${TOPIC}-0`,
        leader,
        KILLED_FOR_MS,
      );
    };
    const faultT = async (cycle: number) => {
      const coordinator = await coordinatorOf("txn-0");
      if (coordinator < 0) return say(`(t${cycle}) txn-0 has no coordinator; skipped`);
      await killAndRestart(
        `(t${cycle}) kill -9 node ${coordinator}, transaction coordinator of txn-0`,
        coordinator,
        KILLED_FOR_MS,
      );
    };
    const faultB = async (cycle: number) => {
      const victim = await coordinatorOf("txn-copier");
      if (victim < 0) return say(`(b${cycle}) txn-copier has no coordinator; skipped`);
      recordFault(`(b${cycle}) SIGSTOP node ${victim}, transaction coordinator of txn-copier`);
      cluster.pause(victim);
      down.add(victim);
      paused.add(victim);
      await sleep(PAUSE_MS);
      const resumedAt = performance.now();
      cluster.resume(victim);
      upSince.set(victim, performance.now());
      paused.delete(victim);
      down.delete(victim);
      const now = await coordinatorOf("txn-copier").catch(() => -1);
      say(`(b${cycle}) SIGCONT node ${victim}; txn-copier's coordinator is now node ${now}`);
      await waitRejoined(`(b${cycle})`, victim, resumedAt);
    };
    const faultC = async (cycle: number) => {
      const controller = await withTimeout(cluster.controllerId(), 3000).catch(() => ids[0]!);
      const other = ids.find((id) => id !== controller)!;
      const victims = [controller, other];
      recordFault(`(c${cycle}) kill -9 nodes ${victims.join(" and ")} at once`);
      for (const v of victims) down.add(v);
      await Promise.all(victims.map(kill));
      await sleep(BOTH_KILLED_FOR_MS);
      const restartAt = performance.now();
      await Promise.all(victims.map((v) => cluster.restart(v)));
      for (const v of victims) {
        upSince.set(v, performance.now());
        down.delete(v);
      }
      for (const v of victims) await waitRejoined(`(c${cycle})`, v, restartAt);
    };

    let runDone: Event[] = [];
    results.push(
      await t.step(
        `faults for ${CHAOS_MS / 1000} s under the transactions, then ${HEAL_MS / 1000} s to heal`,
        async () => {
          try {
            const deadline = performance.now() + CHAOS_MS;
            const schedule = [faultA, faultT, faultB, faultC];
            for (let i = 0; performance.now() < deadline; i++) {
              const cycle = Math.floor(i / schedule.length) + 1;
              const failed = await schedule[i % schedule.length]!(cycle).then(
                () => false,
                (err: Error) => {
                  // No node could name the target, or one did not restart: the cluster is
                  // not healing, and further faults would only hide how.
                  problems.push(`fault ${i + 1} (cycle ${cycle}): ${err.message}`);
                  return true;
                },
              );
              if (failed) break;
              await sleep(GAP_MS);
            }
            say(`faults over; healing for ${HEAL_MS / 1000} s`);
            await sleep(HEAL_MS);
          } finally {
            // Whatever happened, every node runs again and the clients stop (their stderr,
            // kept as a log, ends only then).
            for (const id of [...down]) {
              try {
                if (paused.has(id)) cluster.resume(id);
                else await cluster.restart(id);
              } catch (err) {
                problems.push(`node ${id} did not come back: ${(err as Error).message}`);
              }
            }
            // The clients finish the transaction in hand and stop.
            await stdin.write(new TextEncoder().encode("stop\n")).catch(() => {});
            await stdin.close().catch(() => {});
            const status = await withTimeout(exited, 150_000, () => {
              try {
                child.kill("SIGKILL");
              } catch { /* exited */ }
            }).catch(() => null);
            await reading.catch((err: Error) => problems.push(`client output: ${err.message}`));
            runDone = runEvents;
            say(`clients stopped (exit ${status?.code ?? "killed after 150 s"})`);
          }
        },
      ),
    );

    // Read back once no transaction is open.
    const read = await runJava(CLASS, ["read", cluster.bootstrap(), TOPIC, OUT, GROUP, "6"], {
      timeoutMs: 240_000,
      allowFailure: true,
    });
    logs.push({ name: "client-read", text: Promise.resolve(read.stderr) });
    const readEvents = parseEvents(read.stdout);

    // The run's events by kind.
    const txns = runDone.filter((e): e is Timed<TxnEvent> => e.ev === "txn");
    const copies = runDone.filter((e): e is Timed<CopyEvent> => e.ev === "copy");
    const liveReads = runDone.filter((e): e is Timed<RecordEvent> => e.ev === "read");
    const stopped = runDone.find((e) => e.ev === "stopped") as { stuck: string[] } | undefined;
    const finalRecs = readEvents.filter((e): e is RecordEvent => e.ev === "final");
    const rawRecs = readEvents.filter((e): e is RecordEvent => e.ev === "raw");
    const committedOffsets = new Map(
      readEvents.flatMap((e) => e.ev === "committed" && e.t === TOPIC ? [[e.p, e.o]] : []),
    );
    const stable = readEvents.find((e) => e.ev === "stable") as
      | { ms: number; open: Record<string, string> }
      | undefined;

    /** topic/p@o → value in the final read_committed view. */
    const finalAt = new Map(finalRecs.map((r) => [recordKey(r.t, r.p, r.o), r.v]));
    /** value → where it is visible (topic/p@o), final read_committed view. */
    const visible = new Map<string, string[]>();
    for (const r of finalRecs) {
      const list = visible.get(r.v) ?? [];
      list.push(recordKey(r.t, r.p, r.o));
      visible.set(r.v, list);
    }
    const rawValues = new Set(rawRecs.filter((r) => r.t === TOPIC).map((r) => r.v));

    const check = async (name: string, fn: () => void) => results.push(await t.step(name, fn));

    await check("the clients ran to the end and the read-back completed", () => {
      assert.equal(read.code, 0, `read-back failed:\n${read.stderr.slice(-3000)}`);
      assert.ok(stopped !== undefined, "the run reported its end");
      assert.deepEqual(stopped.stuck, [], "client threads still running at the end");
      assert.ok(txns.filter((e) => e.outcome === "committed").length >= 20, "enough commits");
      assert.ok(txns.some((e) => e.outcome === "aborted"), "aborted transactions");
      assert.ok(copies.some((e) => e.outcome === "committed"), "the copier committed");
    });

    await check("no hanging transaction: every last stable offset reaches its HW", () => {
      assert.ok(stable !== undefined, "the read-back reported stability");
      assert.deepEqual(stable.open, {}, `open after ${stable.ms} ms`);
    });

    await check("reads come in offset order per partition (final and live reader)", () => {
      const bad: string[] = [];
      for (const [what, recs] of [["final", finalRecs], ["live", liveReads]] as const) {
        const last = new Map<string, number>();
        for (const r of recs) {
          const tp = `${r.t}/${r.p}`;
          const before = last.get(tp) ?? -1;
          if (r.o <= before) bad.push(`${what} ${tp}: offset ${r.o} (${r.v}) after ${before}`);
          last.set(tp, r.o);
        }
      }
      const resets = runDone.filter((e) => e.ev === "reader-error");
      assert.deepEqual([...bad.slice(0, 20), ...resets.map((e) => JSON.stringify(e))], []);
    });

    await check("no record is visible twice, and nothing nobody wrote is visible", () => {
      const written = new Map<string, number>(); // value → partition
      for (const e of txns) for (const r of e.recs) written.set(r.v, r.p);
      const dup = [...visible].filter(([, at]) => at.length > 1).map(([v, at]) => `${v} at ${at}`);
      const phantom = finalRecs.filter((r) => r.t === TOPIC && r.p !== written.get(r.v))
        .map((r) => `${r.t}/${r.p}@${r.o} ${r.v}`);
      assert.deepEqual([...dup.slice(0, 20), ...phantom.slice(0, 20)], []);
    });

    await check("every committed transaction is wholly visible, at its offsets", () => {
      const bad: string[] = [];
      for (const e of txns.filter((e) => e.outcome === "committed")) {
        for (const r of e.recs) {
          const there = finalAt.get(recordKey(TOPIC, r.p, r.o));
          if (there !== r.v) {
            bad.push(
              `t${e.id}-${e.k} (committed ${
                (e.at / 1000).toFixed(2)
              } s): ${r.v} acked at p${r.p}@${r.o}` +
                `, which holds ${there ?? "nothing visible"}; visible at ${
                  visible.get(r.v) ?? "none"
                }` +
                `; in the raw log: ${rawValues.has(r.v)}`,
            );
          }
        }
      }
      assert.deepEqual(bad.slice(0, 20), [], `${bad.length} committed records not visible`);
    });

    await check("no aborted or failed transaction is visible, even partly", () => {
      const bad = txns.filter((e) => e.outcome === "aborted" || e.outcome === "failed")
        .flatMap((e) =>
          e.recs.filter((r) => visible.has(r.v)).map((r) =>
            `t${e.id}-${e.k} (${e.outcome}${e.why ? `: ${e.why}` : ""}): ${r.v} visible at ${
              visible.get(r.v)
            }`
          )
        );
      const seenLive = new Set(liveReads.map((r) => r.v));
      const liveBad = txns.filter((e) => e.outcome === "aborted" || e.outcome === "failed")
        .flatMap((e) =>
          e.recs.filter((r) => seenLive.has(r.v)).map((r) => `live reader saw ${r.v}`)
        );
      assert.deepEqual([...bad, ...liveBad].slice(0, 20), []);
    });

    await check("a transaction of unknown outcome is all or nothing", () => {
      const bad = txns.filter((e) => e.outcome === "unknown").flatMap((e) => {
        const shown = e.recs.filter((r) => visible.has(r.v)).length;
        return shown === 0 || shown === e.recs.length
          ? []
          : [`t${e.id}-${e.k}: ${shown} of ${e.recs.length} visible (${e.why})`];
      });
      assert.deepEqual(bad, []);
    });

    await check("each producer's transactions are in its order in every partition", () => {
      const bad: string[] = [];
      const lastK = new Map<string, { k: number; o: number }>();
      for (const r of finalRecs) {
        if (r.t !== TOPIC) continue;
        const m = /^t(\d+)-(\d+)-\d+$/.exec(r.v);
        if (!m) continue;
        const key = `${m[1]}/${r.p}`;
        const k = Number(m[2]);
        const before = lastK.get(key);
        if (before && k < before.k) {
          bad.push(`p${r.p}@${r.o}: ${r.v} after transaction ${before.k} at ${before.o}`);
        }
        lastK.set(key, { k, o: r.o });
      }
      assert.deepEqual(bad.slice(0, 20), []);
    });

    await check("what the live read_committed reader saw is what the log finally holds", () => {
      const bad = liveReads.filter((r) => finalAt.get(recordKey(r.t, r.p, r.o)) !== r.v).map(
        (r) =>
          `${r.t}/${r.p}@${r.o}: read ${r.v} at ${(r.at / 1000).toFixed(2)} s, finally ${
            finalAt.get(recordKey(r.t, r.p, r.o)) ?? "nothing visible"
          }`,
      );
      assert.deepEqual(bad.slice(0, 20), [], `${bad.length} live reads contradicted`);
    });

    await check(
      "consume-transform-produce: the copies are exactly the inputs below the committed " +
        "offsets, each once, in order",
      () => {
        const bad: string[] = [];
        const copiesOf = new Map<string, number>();
        const lastCopied = new Map<number, number>();
        for (const r of finalRecs.filter((r) => r.t === OUT)) {
          const m = /^c\|(\d+)\|(\d+)\|(.*)$/.exec(r.v);
          if (!m) {
            bad.push(`${OUT}/${r.p}@${r.o}: ${r.v} is not a copy`);
            continue;
          }
          const [p, o, v] = [Number(m[1]), Number(m[2]), m[3]!];
          const input = finalAt.get(recordKey(TOPIC, p, o));
          if (p !== r.p) bad.push(`${OUT}/${r.p}@${r.o}: a copy of p${p} in p${r.p}`);
          if (input !== v) {
            bad.push(
              `${OUT}/${r.p}@${r.o}: copy of ${TOPIC}/${p}@${o} = ${v}, input holds ${input}`,
            );
          }
          if (o >= (committedOffsets.get(p) ?? 0)) {
            bad.push(
              `${OUT}/${r.p}@${r.o}: copy of offset ${o}, at or past p${p}'s committed ` +
                `offset ${committedOffsets.get(p) ?? "none"}`,
            );
          }
          if (o <= (lastCopied.get(p) ?? -1)) {
            bad.push(`${OUT}/${r.p}@${r.o}: copy of offset ${o} after ${lastCopied.get(p)}`);
          }
          lastCopied.set(p, o);
          count(copiesOf, `${p}@${o}`);
        }
        for (const r of finalRecs.filter((r) => r.t === TOPIC)) {
          if (r.o >= (committedOffsets.get(r.p) ?? 0)) continue;
          const n = copiesOf.get(`${r.p}@${r.o}`) ?? 0;
          if (n !== 1) bad.push(`${TOPIC}/${r.p}@${r.o} (${r.v}) copied ${n} times`);
        }
        assert.deepEqual(bad.slice(0, 20), [], `${bad.length} exactly-once violations`);
        assert.ok(committedOffsets.size > 0, "the copier committed offsets");
      },
    );

    // Figures.
    const byOutcome = (list: { outcome: Outcome }[]) => {
      const m = new Map<string, number>();
      for (const e of list) count(m, e.outcome);
      return JSON.stringify(Object.fromEntries(m));
    };
    for (let id = 0; id < PRODUCERS; id++) {
      say(`producer txn-${id}: transactions ${byOutcome(txns.filter((e) => e.id === id))}`);
    }
    const committedTxns = txns.filter((e) => e.outcome === "committed");
    const unknownVisible = txns.filter((e) =>
      e.outcome === "unknown" && e.recs.every((r) => visible.has(r.v))
    ).length;
    say(
      `transactions: ${txns.length} (${byOutcome(txns)}); of the unknown, ${unknownVisible} ` +
        `turned out committed; ${committedTxns.length * RECORDS_PER_TXN} committed records`,
    );
    const inputCovered = [...committedOffsets.values()].reduce((a, b) => a + b, 0);
    say(
      `copier: ${copies.length} transactions (${byOutcome(copies)}), ` +
        `${finalRecs.filter((r) => r.t === OUT).length} copies visible; committed offsets ${
          JSON.stringify(Object.fromEntries(committedOffsets))
        } (sum ${inputCovered})`,
    );
    say(
      `final read: ${finalRecs.filter((r) => r.t === TOPIC).length} visible records of ${
        rawRecs.filter((r) => r.t === TOPIC).length
      } in ${TOPIC}'s log (the rest aborted, plus markers); stable after ${
        stable?.ms ?? "?"
      } ms; ` +
        `live reader saw ${liveReads.length} records`,
    );
    // The aborts had something to hide: records of aborted transactions are in the log.
    const notCommitted = txns.filter((e) => e.outcome === "aborted" || e.outcome === "failed");
    const inLog = notCommitted.filter((e) => e.recs.some((r) => rawValues.has(r.v)));
    say(
      `aborted or failed transactions with records in the log (read_uncommitted): ${inLog.length}` +
        ` of ${notCommitted.length}, ${
          inLog.reduce((n, e) => n + e.recs.filter((r) => rawValues.has(r.v)).length, 0)
        } records, none visible read_committed`,
    );
    for (
      const e of [...txns, ...copies].filter((e) =>
        e.outcome === "failed" || e.outcome === "unknown"
      ).slice(0, 10)
    ) {
      const name = e.ev === "txn" ? `t${e.id}-${e.k}` : `copy ${e.k}`;
      say(`${name} ${e.outcome} after ${e.ms} ms: ${e.why}`);
    }
    const errors = new Map<string, number>();
    for (const e of runDone) {
      if (e.ev === "error") count(errors, `${e.op.replace(/ \d+$/, "")}: ${e.what.slice(0, 80)}`);
      if (e.ev === "replaced") count(errors, `${e.who} replaced`);
    }
    for (const [what, n] of [...errors].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
      say(`client errors: ${n} x ${what}`);
    }
    for (const f of faults) {
      say(
        `next commit after ${f.label}: ${
          f.nextCommitMs === null ? "none" : `${f.nextCommitMs.toFixed(0)} ms`
        }`,
      );
    }
    for (const p of problems) say(`PROBLEM: ${p}`);

    await check("faults were survivable: every node rejoined every ISR", () => {
      assert.deepEqual(problems, []);
    });

    // The logs: kept on a failure, or always with TXN_CHAOS_LOG_DIR.
    const keep = Deno.env.get("TXN_CHAOS_LOG_DIR") ??
      (results.every((ok) => ok) ? null : await Deno.makeTempDir({ prefix: "txn-chaos-logs-" }));
    if (keep !== null) {
      for (const id of ids) {
        if (cluster.node(id).process !== null) await kill(id);
      }
      await Deno.mkdir(keep, { recursive: true });
      for (const l of logs) {
        await Deno.writeTextFile(join(keep, `${l.name}.log`), await l.text.catch(String));
      }
      const dump = (kind: string, list: unknown[]) =>
        Deno.writeTextFile(
          join(keep, `${kind}.jsonl`),
          list.map((e) => JSON.stringify(e)).join("\n") + "\n",
        );
      await dump("run-events", runDone);
      await dump("read-events", readEvents);
      say(`logs and events in ${keep}`);
    }
  },
});
