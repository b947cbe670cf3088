/**
 * The node's Prometheus metrics, named as Kafka's JMX exporter names Kafka's MBeans (so that
 * existing Grafana boards read them): per-topic traffic counted where produce and fetch are
 * answered, request counts and latencies counted by the broker's dispatch, and gauges read
 * from the node's parts when scraped (partitions, controller, Raft, logs, process, and
 * consumer lag computed from the groups this node coordinates).
 */
import { OFFSETS_TOPIC } from "../group/mod.ts";
import type { GroupService } from "../group/mod.ts";
import type { BrokerLifecycle, RaftMetadataStore } from "../metadata/mod.ts";
import { BATCH_HEADER_SIZE, readBatchHeader } from "../protocol/mod.ts";
import type { ReplicaManager } from "../replication/mod.ts";
import type { Clock } from "../util/clock.ts";
import { type Labels, MetricsRegistry } from "../util/metrics.ts";

const BTM = "kafka_server_brokertopicmetrics";
const RM = "kafka_server_replicamanager";
const KC = "kafka_controller_kafkacontroller";

/** The counters the request path updates, and the registry they render from. */
export class BrokerMetrics {
  readonly registry = new MetricsRegistry();
  readonly messagesIn = this.registry.counter(
    `${BTM}_messagesin_total`,
    "Records appended by produce requests, per topic",
  );
  readonly bytesIn = this.registry.counter(
    `${BTM}_bytesin_total`,
    "Bytes appended by produce requests, per topic",
  );
  readonly bytesOut = this.registry.counter(
    `${BTM}_bytesout_total`,
    "Bytes returned to consumers by fetch requests, per topic (replication excluded)",
  );
  readonly failedProduce = this.registry.counter(
    `${BTM}_failedproducerequests_total`,
    "Produce requests that failed for a partition of the topic",
  );
  readonly failedFetch = this.registry.counter(
    `${BTM}_failedfetchrequests_total`,
    "Fetch requests that failed for a partition of the topic",
  );
  readonly requests = this.registry.counter(
    "kafka_network_requestmetrics_requests_total",
    "Requests handled, per API",
  );
  readonly requestTime = this.registry.histogram(
    "kafka_network_requestmetrics_totaltimems",
    "Time from a request's arrival to its response being ready, in ms, per API",
  );
  readonly raftCommitTime = this.registry.histogram(
    "tidelog_raft_commit_latency_ms",
    "Time from a controller proposal to its commit in the metadata quorum, in ms",
  );
  readonly logFsyncTime = this.registry.histogram(
    "kafka_log_logflushstats_logflushrateandtimems",
    "Time of each partition log's group-commit fsync round, in ms",
  );
}

/** Traffic labels of a topic. */
export function topicLabels(topic: string): Labels {
  return { topic };
}

/** What the gauges read. */
export interface NodeParts {
  nodeId: number;
  clock: Clock;
  store: RaftMetadataStore;
  replicas: ReplicaManager;
  groups: GroupService;
  lifecycle: () => BrokerLifecycle | undefined;
  /** Milliseconds the event loop was late on its last check. */
  eventLoopLagMs: () => number;
}

/** Registers the gauges that read `parts` when scraped. */
export function registerNodeGauges(metrics: BrokerMetrics, parts: NodeParts): void {
  const r = metrics.registry;
  const one = (v: number): [Labels, number][] => [[{}, v]];
  const partitions = () => [...parts.replicas.partitions()].filter((p) => !p.closed);
  const leading = () => partitions().filter((p) => p.isLeader);
  const minIsrOf = (topicId: string) => {
    const image = parts.store.image;
    const topic = image.topicsById.get(topicId);
    const raw = topic?.configs["min.insync.replicas"];
    return raw === undefined ? 1 : Number(raw);
  };
  r.gauge(
    `${RM}_partitioncount`,
    "Partitions with a replica on this broker",
    () => one(partitions().length),
  );
  r.gauge(`${RM}_leadercount`, "Partitions this broker leads", () => one(leading().length));
  r.gauge(
    `${RM}_underreplicatedpartitions`,
    "Partitions led here whose ISR is smaller than their replica set",
    () => one(leading().filter((p) => p.isr.length < p.replicas.length).length),
  );
  r.gauge(
    `${RM}_underminisrpartitioncount`,
    "Partitions led here whose ISR is smaller than min.insync.replicas",
    () => one(leading().filter((p) => p.isr.length < minIsrOf(p.topicId)).length),
  );
  r.counterOf(
    `${RM}_isrshrinks_total`,
    "ISR shrinks of partitions led here",
    () => one(parts.replicas.isrChanges.shrinks),
  );
  r.counterOf(
    `${RM}_isrexpands_total`,
    "ISR expansions of partitions led here",
    () => one(parts.replicas.isrChanges.expands),
  );
  r.gauge(
    `${KC}_activecontrollercount`,
    "1 on the controller (the Raft leader), else 0",
    () => one(parts.store.isController() ? 1 : 0),
  );
  r.gauge(
    `${KC}_offlinepartitionscount`,
    "Partitions without a leader (reported by the controller)",
    () => {
      if (!parts.store.isController()) return one(0);
      let n = 0;
      for (const t of parts.store.image.topicsById.values()) {
        for (const p of t.partitions) if (p.leader < 0) n++;
      }
      return one(n);
    },
  );
  r.gauge(
    `${KC}_preferredreplicaimbalancecount`,
    "Partitions whose leader is not their preferred (first) replica (reported by the controller)",
    () => {
      if (!parts.store.isController()) return one(0);
      let n = 0;
      for (const t of parts.store.image.topicsById.values()) {
        for (const p of t.partitions) if (p.leader >= 0 && p.leader !== p.replicas[0]) n++;
      }
      return one(n);
    },
  );
  r.gauge("kafka_log_log_size", "Bytes of each partition's log on this broker", function* () {
    for (const p of partitions()) {
      yield [{ topic: p.topic, partition: String(p.partitionId) }, p.log.sizeInBytes];
    }
  });
  r.gauge(
    "tidelog_raft_term",
    "The metadata quorum's current Raft term",
    () => one(parts.store.status().term),
  );
  r.gauge(
    "tidelog_raft_commit_index",
    "The metadata log's commit index",
    () => one(parts.store.status().commit),
  );
  r.gauge(
    "tidelog_raft_leader",
    "The metadata quorum's leader (the controller); -1: none",
    () => one(parts.store.status().leader ?? -1),
  );
  r.gauge(
    "tidelog_broker_fenced",
    "1 while the controller has this broker fenced",
    () => one(parts.lifecycle()?.fenced === false ? 0 : 1),
  );
  r.gauge(
    "process_resident_memory_bytes",
    "Resident memory of the process",
    () => one(Deno.memoryUsage().rss),
  );
  r.gauge(
    "tidelog_heap_used_bytes",
    "JavaScript heap in use",
    () => one(Deno.memoryUsage().heapUsed),
  );
  r.gauge(
    "tidelog_event_loop_lag_ms",
    "How late the event loop ran its last timer check",
    () => one(parts.eventLoopLagMs()),
  );
  const lags = () => consumerLags(parts);
  r.gauge(
    "kafka_consumergroup_lag",
    "Records between a group's committed offset and the partition's last stable offset (groups coordinated here, partitions with a replica here)",
    function* () {
      for (const l of lags()) yield [l.labels, l.lag];
    },
  );
  r.gauge(
    "kafka_consumergroup_lag_seconds",
    "Age of the oldest record a group has not consumed yet (0 when caught up)",
    function* () {
      for (const l of lags()) yield [l.labels, l.seconds];
    },
  );
}

/** The lag of every committed offset of the groups this node coordinates. */
function consumerLags(parts: NodeParts): { labels: Labels; lag: number; seconds: number }[] {
  const out: { labels: Labels; lag: number; seconds: number }[] = [];
  const now = parts.clock.nowMs();
  parts.groups.read((core) => {
    for (const groupId of core.groupIds()) {
      const g = core.group(groupId);
      if (g === undefined) continue;
      for (const o of g.offsets) {
        if (o.topic === OFFSETS_TOPIC) continue;
        const p = parts.replicas.getPartition(o.topic, o.partition);
        if (!p || p.closed) continue;
        const end = p.lastStableOffset;
        const lag = Math.max(0, end - o.offset);
        let seconds = 0;
        if (lag > 0 && o.offset >= p.log.logStartOffset && o.offset < p.log.logEndOffset) {
          const { records } = p.log.read(o.offset, 1, { minOneMessage: true });
          if (records.length >= BATCH_HEADER_SIZE) {
            const h = readBatchHeader(records, 0);
            seconds = Math.max(0, (now - h.baseTimestamp) / 1000);
          }
        }
        out.push({
          labels: { group: groupId, topic: o.topic, partition: String(o.partition) },
          lag,
          seconds,
        });
      }
    }
  });
  return out;
}
