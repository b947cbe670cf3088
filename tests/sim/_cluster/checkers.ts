/**
 * The simulation's checkers.
 *
 * After every event ({@linkcode StepChecker}):
 * - a leader's high watermark never passes the durable end of a member of the ISR the
 *   metadata log committed for its epoch (else an acknowledged write can be lost by
 *   electing that member);
 * - at most one node leads a partition in a given leader epoch;
 * - every image's partition leader is -1 or an unfenced member of its ISR (I5);
 * - leader and partition epochs never go back in a node's successive images.
 *
 * At the end, on the data read back from every partition ({@linkcode checkData}):
 * - every acks=all acknowledgement is in the log at its offset, exactly once unless one of
 *   its attempts had an unknown outcome (a plain producer's retry) or an idempotent value
 *   was resent under a new producer id;
 * - everything a reader read below a high watermark is still there, unchanged;
 * - offsets are dense from 0 to the high watermark and every value was sent by someone;
 * - each producer's acknowledged values are in order;
 * - every in-sync replica holds the same records below the high watermark.
 */
import { decodeRecords } from "../../../lib/protocol/mod.ts";
import type { MetadataImage } from "../../../lib/metadata/mod.ts";
import type { NodeParts } from "../../../lib/node.ts";
import type { Partition } from "../../../lib/replication/mod.ts";
import { type ClusterSim, TOPIC } from "./cluster_sim.ts";

const decoder = new TextDecoder();
const OFFSETS_TOPIC = "__consumer_offsets";

/** The most advanced applied image among the running nodes (Raft makes them prefixes). */
export function latestImage(sim: ClusterSim): MetadataImage | null {
  let best: MetadataImage | null = null;
  for (const m of sim.machines) {
    const image = m.parts?.store.image;
    if (image && (best === null || image.offset > best.offset)) best = image;
  }
  return best;
}

/**
 * Beyond the session timeout, how long a fencing may take to show in the committed
 * metadata (a slow controller disk delays commits, not decisions).
 */
const FENCING_SLACK_MS = 3000;

/** Invariants checked after every event. */
export class StepChecker {
  readonly #sim: ClusterSim;
  /**
   * Topic-partition key → node → the last durable end seen while the node was up (kept
   * after it dies: what was durable stays so).
   */
  readonly #durable = new Map<string, Map<number, number>>();
  /** Each partition object's key, built once (this runs after every event). */
  readonly #keys = new WeakMap<Partition, string>();
  /** Node:partition keys of the internal partitions sampled in this (full) check. */
  readonly #freshly = new Set<string>();
  /**
   * Per incarnation (its parts): topic-partition → [leader epoch, partition epoch] last
   * seen in its image, and the image last checked. A restart may begin from an older image.
   */
  readonly #epochs = new WeakMap<NodeParts, Map<string, [number, number]>>();
  readonly #lastImage = new WeakMap<NodeParts, MetadataImage>();
  readonly violations: string[] = [];
  checks = 0;
  #lastLatest: MetadataImage | null = null;
  /** Who was controller until when, as the nodes' stores said (newest last). */
  readonly #controllers: { id: number; until: number }[] = [];

  constructor(sim: ClusterSim) {
    this.#sim = sim;
  }

  #fail(message: string): void {
    if (this.violations.length < 20) {
      this.violations.push(`t=${(this.#sim.now / 1000).toFixed(3)} s: ${message}`);
    }
  }

  check(): void {
    this.checks++;
    const sim = this.#sim;
    // The clients' topic after every event; the internal ones (__consumer_offsets: 50
    // partitions per node) every 16th, which is cheaper and still catches a lasting breach.
    const full = this.checks % 16 === 0;
    if (full) this.#freshly.clear();
    for (const m of sim.machines) {
      const parts = m.parts;
      if (parts === null) continue;
      for (const p of parts.replicas.partitions()) {
        if (p.closed || (!full && p.topic !== TOPIC)) continue;
        this.#durableOf(p).set(m.id, p.log.durableEndOffset);
        if (full && p.topic !== TOPIC) this.#freshly.add(`${m.id}:${this.#keys.get(p)}`);
        // Retention and DeleteRecords never go past the high watermark (Kafka's rule):
        // what lies above it may not be replicated anywhere yet.
        if (p.log.logStartOffset > p.highWatermark) {
          this.#fail(
            `n${m.id}: log start ${p.log.logStartOffset} of ${p.name} is above its high watermark ${p.highWatermark} (${p.role})`,
          );
        }
      }
      const image = parts.store.image;
      if (this.#lastImage.get(parts) !== image) {
        this.#lastImage.set(parts, image);
        this.#checkImage(m.id, parts, image);
      }
    }
    for (const m of sim.machines) {
      if (m.parts?.store.isController()) {
        const last = this.#controllers.at(-1);
        if (last?.id === m.id) last.until = sim.now;
        else this.#controllers.push({ id: m.id, until: sim.now });
      }
    }
    const latest = latestImage(sim);
    if (!latest) return;
    if (latest !== this.#lastLatest) {
      if (this.#lastLatest !== null && latest.offset > this.#lastLatest.offset) {
        this.#checkFencing(this.#lastLatest, latest);
      }
      this.#lastLatest = latest;
    }
    const leaders = new Map<string, number>();
    for (const m of sim.machines) {
      const parts = m.parts;
      if (parts === null || m.proc?.state === "dead") continue;
      for (const p of parts.replicas.partitions()) {
        if (!p.isLeader || p.closed || (!full && p.topic !== TOPIC)) continue;
        const key = `${p.name}@${p.leaderEpoch}`;
        const other = leaders.get(key);
        if (other !== undefined) {
          this.#fail(`n${other} and n${m.id} both lead ${p.name} in epoch ${p.leaderEpoch}`);
        }
        leaders.set(key, m.id);
        const st = latest.topicsById.get(p.topicId)?.partitions[p.partitionId];
        if (!st || st.leaderEpoch !== p.leaderEpoch) continue;
        for (const member of st.isr) {
          if (member === m.id) continue;
          // For the sampled internal topics, only what this check saw: a member that died
          // since its last sample may have reported more than was seen.
          if (p.topic !== TOPIC && !this.#freshly.has(`${member}:${this.#keys.get(p)}`)) continue;
          const durable = this.#durableOf(p).get(member);
          if (durable !== undefined && p.highWatermark > durable) {
            this.#fail(
              `leader n${m.id} of ${p.name} (epoch ${p.leaderEpoch}) has HW ${p.highWatermark} above the durable end ${durable} of committed ISR member n${member} (ISR ${
                st.isr.join(",")
              }, partition epoch ${st.partitionEpoch}, leader's ${p.partitionEpoch})`,
            );
          }
        }
      }
    }
  }

  /**
   * A broker fenced while it ran and reached the controller, with no fault on either in
   * the session before: the controller fenced a live broker (a stalled controller's
   * "fencing storm", issue 10 §1.4). Slow disks are not an excuse: they must not cost
   * anyone their session.
   */
  #checkFencing(prev: MetadataImage, next: MetadataImage): void {
    const sim = this.#sim;
    for (const [id, b] of next.brokers) {
      const before = prev.brokers.get(id);
      if (!b.fenced || !before || before.fenced || before.brokerEpoch !== b.brokerEpoch) continue;
      if (before.inControlledShutdown) continue;
      const controllers = sim.machines.flatMap((m) => {
        const c = m.parts?.store.controllerId();
        return c === null || c === undefined ? [] : [c];
      });
      const window = 1500 + FENCING_SLACK_MS;
      const from = sim.now - window;
      // A slow disk excuses nothing, except the fencing of a controller it cost the role.
      const excuses = sim.disturbancesOf([id, ...controllers], from, sim.now).filter((d) =>
        d.what !== "slowDisk" ||
        (d.nodes !== "all" && d.nodes.has(id) && !controllers.includes(id) &&
          this.#wasController(id, from))
      );
      if (excuses.length === 0) {
        this.#fail(
          `broker ${id} was fenced (controller ${
            [...new Set(controllers)].join("/")
          }) though it ran and reached the controller: no fault touched either in the last ${window} ms`,
        );
      }
    }
  }

  /** Whether node `id` was the controller (some node said so) at or after `since`. */
  #wasController(id: number, since: number): boolean {
    return this.#controllers.some((c) => c.id === id && c.until >= since);
  }

  #durableOf(p: Partition): Map<number, number> {
    let key = this.#keys.get(p);
    if (key === undefined) {
      key = `${p.topicId}-${p.partitionId}`;
      this.#keys.set(p, key);
    }
    let byNode = this.#durable.get(key);
    if (byNode === undefined) {
      byNode = new Map();
      this.#durable.set(key, byNode);
    }
    return byNode;
  }

  #checkImage(nodeId: number, parts: NodeParts, image: MetadataImage): void {
    const seen = this.#epochs.get(parts) ?? new Map<string, [number, number]>();
    this.#epochs.set(parts, seen);
    for (const t of image.topicsById.values()) {
      t.partitions.forEach((p, i) => {
        const key = `${t.topicId}-${i}`;
        if (p.leader !== -1) {
          const b = image.brokers.get(p.leader);
          if (!p.isr.includes(p.leader) || !b || b.fenced) {
            this.#fail(
              `n${nodeId}'s image at offset ${image.offset}: leader ${p.leader} of ${t.name}-${i} is not an unfenced ISR member (ISR ${
                p.isr.join(",")
              }, fenced ${b?.fenced}) (I5)`,
            );
          }
        }
        if (p.leaderRecoveryState === 1 && t.name === TOPIC) {
          this.#sim.history.uncleanPartitions.add(i);
        }
        if (p.leaderRecoveryState === 1 && t.name === OFFSETS_TOPIC) {
          this.#sim.history.uncleanOffsetsPartitions.add(i);
          this.#sim.history.offsetsPartitionCount = t.partitions.length;
        }
        const before = seen.get(key);
        if (before && (p.leaderEpoch < before[0] || p.partitionEpoch < before[1])) {
          this.#fail(
            `n${nodeId}: epochs of ${t.name}-${i} went back from ${
              before.join("/")
            } to ${p.leaderEpoch}/${p.partitionEpoch}`,
          );
        }
        seen.set(key, [p.leaderEpoch, p.partitionEpoch]);
      });
    }
  }
}

/** What the final read found for one partition. */
export interface FinalPartition {
  partition: number;
  leader: number;
  hw: number;
  /** Below it, retention deleted the records. */
  logStart: number;
  values: Map<number, string>;
}

/** The end-of-run data checks; returns the violations found. */
export function checkData(sim: ClusterSim, finals: FinalPartition[]): string[] {
  const out: string[] = [];
  const fail = (m: string) => {
    if (out.length < 30) out.push(m);
  };
  const h = sim.history;
  const known = new Map<string, number>();
  for (const f of finals) {
    for (let o = f.logStart; o < f.hw; o++) {
      const v = f.values.get(o);
      if (v === undefined) {
        fail(
          `partition ${f.partition}: offset ${o} below the HW ${f.hw} is missing (offsets not dense)`,
        );
        continue;
      }
      known.set(v, (known.get(v) ?? 0) + 1);
      if (!h.sent.has(v)) {
        fail(`partition ${f.partition} offset ${o} holds ${v}, which nobody sent`);
      }
    }
    for (const [offset, value] of h.read.get(f.partition) ?? []) {
      if (offset < f.logStart || h.uncleanPartitions.has(f.partition)) continue;
      const now = f.values.get(offset);
      if (now !== value) {
        fail(
          `partition ${f.partition}: a reader read ${value} at ${offset}, the log now has ${
            now ?? "nothing"
          } (HW ${f.hw})`,
        );
      }
    }
  }
  const byPartition = new Map(finals.map((f) => [f.partition, f]));
  const lastOffset = new Map<string, { n: number; offset: number }>();
  for (const v of h.sent.values()) {
    const f = byPartition.get(v.partition);
    if (!f) continue;
    const copies = known.get(v.value) ?? 0;
    const gone = v.acked !== null && v.acked.offset < f.logStart;
    if (copies > 1 && v.ambiguous === 0 && !v.resentUnderNewId) {
      fail(
        `${v.value} is in partition ${v.partition} ${copies} times, with no retry that could explain it`,
      );
    }
    if (v.acked === null || gone || h.uncleanPartitions.has(v.partition)) continue;
    if (v.acks === -1 && f.values.get(v.acked.offset) !== v.value) {
      fail(
        `acknowledged write lost: ${v.value} (acks=all, acknowledged by n${v.acked.node} at t=${
          (v.acked.at / 1000).toFixed(3)
        } s at offset ${v.acked.offset}); the log has ${
          f.values.get(v.acked.offset) ?? "nothing"
        } there (HW ${f.hw}, leader n${f.leader})`,
      );
    }
    const producer = v.value.slice(0, v.value.lastIndexOf("-"));
    const n = Number(v.value.slice(v.value.lastIndexOf("-") + 1));
    const prev = lastOffset.get(producer);
    if (v.acks === -1 && prev && prev.n < n && prev.offset >= v.acked.offset) {
      fail(
        `${producer}: value ${n} acknowledged at ${v.acked.offset}, not after value ${prev.n} at ${prev.offset}`,
      );
    }
    if (v.acks === -1 && (!prev || prev.n < n)) {
      lastOffset.set(producer, { n, offset: v.acked.offset });
    }
  }
  // Replicas agree below the HW.
  const image = latestImage(sim);
  for (const f of finals) {
    for (const m of sim.machines) {
      const p = m.parts?.replicas.getPartition(TOPIC, f.partition);
      if (!p || p.closed || image === null) continue;
      const st = image.topic(TOPIC)?.partitions[f.partition];
      if (!st?.isr.includes(m.id)) continue;
      const upTo = Math.min(f.hw, p.log.logEndOffset);
      if (upTo < f.hw) {
        fail(
          `n${m.id} is in the ISR of partition ${f.partition} but its log ends at ${p.log.logEndOffset} < HW ${f.hw}`,
        );
        continue;
      }
      let offset = Math.max(p.log.logStartOffset, f.logStart);
      while (offset < upTo) {
        const { records } = p.log.read(offset, 1 << 20, { maxOffset: upTo, minOneMessage: true });
        const decoded = decodeRecords(records).filter((r) => r.offset >= offset && r.offset < upTo);
        if (decoded.length === 0) break;
        for (const r of decoded) {
          const value = r.value === null ? "<null>" : decoder.decode(r.value);
          if (f.values.get(r.offset) !== value) {
            fail(
              `n${m.id}'s replica of partition ${f.partition} has ${value} at ${r.offset}, the leader ${
                f.values.get(r.offset)
              }`,
            );
          }
        }
        offset = decoded.at(-1)!.offset + 1;
      }
    }
  }
  return out;
}
