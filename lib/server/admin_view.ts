/**
 * The read-only views behind the HTTP JSON API (`/v1/...`, issue 14) and the dashboard: plain
 * objects built from what the node's parts already hold, so that `lib/http/` only routes and
 * serialises (DESIGN §2). Every node holds the whole metadata image, so cluster, broker and
 * topic views answer the same on every node, except for the `local` replica details (this
 * node's log of a partition). Groups exist only in their coordinator's memory: a node lists
 * the groups it coordinates and names the coordinator of any other group.
 */
import {
  groupPartition,
  type GroupService,
  type GroupSnapshot,
  OFFSETS_TOPIC,
  OFFSETS_TOPIC_PARTITIONS,
} from "../group/mod.ts";
import {
  type BrokerConfigLayers,
  type MetadataImage,
  type PartitionState,
  type RaftMetadataStore,
  topicConfigNumber,
  type TopicImage,
} from "../metadata/mod.ts";
import { decodeData, ErrorCode } from "../protocol/mod.ts";
import type { Partition, ReplicaManager } from "../replication/mod.ts";
import type { Clock } from "../util/clock.ts";
import type { BrokerMetrics } from "./broker_metrics.ts";
import { isInternalTopic } from "./topics.ts";

/** What the views read. */
export interface AdminViewParts {
  nodeId: number;
  clock: Clock;
  store: RaftMetadataStore;
  replicas: ReplicaManager;
  groups: GroupService;
  metrics: BrokerMetrics;
  /** The node's static broker defaults (`--config`), under the dynamic broker configs. */
  staticBrokerConfigs?: Readonly<Record<string, string>>;
}

/**
 * A view that may have nothing to show: `notFound` (HTTP 404) or `unavailable` (503, try
 * again), with a body that says why and, for a group, which node to ask.
 */
export type AdminAnswer =
  | { readonly kind: "ok"; readonly body: unknown }
  | { readonly kind: "notFound" | "unavailable"; readonly body: { error: string } };

/** `GET /v1/cluster`. */
export interface ClusterView {
  clusterId: string | null;
  /** The node answering. */
  nodeId: number;
  /** The active controller (the metadata quorum's Raft leader); null while there is none. */
  controllerId: number | null;
  /** Metadata records applied to this node's image. */
  metadataOffset: number;
  raft: {
    role: string;
    term: number;
    leader: number | null;
    commit: number;
    applied: number;
    voters: number[];
  };
  brokers: { registered: number; live: number };
  topics: number;
  partitions: number;
  underReplicatedPartitions: number;
  underMinIsrPartitions: number;
  offlinePartitions: number;
}

/** One entry of `GET /v1/brokers`. */
export interface BrokerView {
  id: number;
  host: string | null;
  port: number | null;
  rack: string | null;
  /**
   * "up": registered and unfenced; "controlled-shutdown": unfenced but moving its leaderships
   * away before it stops; "unregistered": a voter that never registered.
   */
  state: "up" | "fenced" | "controlled-shutdown" | "unregistered";
  fenced: boolean;
  inControlledShutdown: boolean;
  isController: boolean;
  /** A voter of the metadata quorum. */
  voter: boolean;
  brokerEpoch: number | null;
}

/** One entry of `GET /v1/topics`. */
export interface TopicSummaryView {
  name: string;
  topicId: string;
  internal: boolean;
  partitions: number;
  replicationFactor: number;
  /** Partitions whose ISR is smaller than their replica set. */
  underReplicated: number;
  /** Partitions whose ISR is smaller than min.insync.replicas (acks=all produce fails). */
  underMinIsr: number;
  /** Partitions without a leader. */
  offline: number;
}

/** This node's replica of a partition. */
export interface LocalReplicaView {
  role: "leader" | "follower";
  logStartOffset: number;
  logEndOffset: number;
  highWatermark: number;
  lastStableOffset: number;
  sizeBytes: number;
}

/** One partition of `GET /v1/topics/{name}`. */
export interface PartitionView {
  partition: number;
  /** -1 without a leader. */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  underReplicated: boolean;
  underMinIsr: boolean;
  offline: boolean;
  /** Null when this node holds no replica of the partition. */
  local: LocalReplicaView | null;
}

/** `GET /v1/topics/{name}`. */
export interface TopicView extends TopicSummaryView {
  /** The topic's own configs (overrides of the broker defaults). */
  configs: Record<string, string>;
  minInsyncReplicas: number;
  partitionDetails: PartitionView[];
}

/** One entry of `GET /v1/groups`. */
export interface GroupSummaryView {
  groupId: string;
  state: string;
  protocolType: string | null;
  protocol: string | null;
  generationId: number;
  members: number;
  /** Partitions with a committed offset. */
  partitions: number;
  /** Sum of the lag of the partitions whose end this node knows. */
  lag: number;
  /** Partitions with a committed offset whose end this node does not know. */
  partitionsWithoutEnd: number;
}

/** `GET /v1/groups`: the groups this node coordinates. */
export interface GroupsView {
  nodeId: number;
  /** `__consumer_offsets` partitions led here: the share of groups this list covers. */
  offsetsPartitionsLed: number;
  offsetsPartitions: number;
  groups: GroupSummaryView[];
}

/** One committed offset of `GET /v1/groups/{id}`. */
export interface GroupOffsetView {
  topic: string;
  partition: number;
  committedOffset: number;
  metadata: string | null;
  commitTimestampMs: number;
  /**
   * The partition's last stable offset on this node's replica (a follower's may trail the
   * leader's a little); null without a replica here.
   */
  endOffset: number | null;
  endFrom: "leader" | "follower" | null;
  /** Records not consumed yet; null when `endOffset` is. */
  lag: number | null;
}

/** `GET /v1/groups/{id}`. */
export interface GroupView {
  groupId: string;
  coordinator: number;
  state: string;
  protocolType: string | null;
  protocol: string | null;
  generationId: number;
  leaderId: string | null;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    sessionTimeoutMs: number;
    /** The consumer protocol's assignment; null for other protocols or undecodable bytes. */
    assignment: { topic: string; partitions: number[] }[] | null;
  }[];
  offsets: GroupOffsetView[];
  lag: number;
}

/** `GET /v1/throughput`: counters since the node started; rates are the reader's to take. */
export interface ThroughputView {
  nodeId: number;
  /** This node's clock when read, to divide the counters' differences by. */
  atMs: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  topics: { topic: string; bytesIn: number; bytesOut: number; messagesIn: number }[];
}

/** The views of one node. */
export class AdminView {
  readonly #parts: AdminViewParts;

  constructor(parts: AdminViewParts) {
    this.#parts = parts;
  }

  /** `GET /v1/cluster`. */
  cluster(): ClusterView {
    const { store, nodeId } = this.#parts;
    const image = store.image;
    const layers = this.#layers(image);
    const st = store.status();
    let partitions = 0;
    let urp = 0;
    let underMinIsr = 0;
    let offline = 0;
    for (const t of image.topicsById.values()) {
      const s = summarize(t, layers);
      partitions += s.partitions;
      urp += s.underReplicated;
      underMinIsr += s.underMinIsr;
      offline += s.offline;
    }
    return {
      clusterId: image.clusterId,
      nodeId,
      controllerId: store.controllerId(),
      metadataOffset: image.offset,
      raft: {
        role: st.role,
        term: st.term,
        leader: st.leader ?? null,
        commit: st.commit,
        applied: st.applied,
        voters: [...st.voters],
      },
      brokers: { registered: image.brokers.size, live: image.liveBrokers().length },
      topics: image.topicsById.size,
      partitions,
      underReplicatedPartitions: urp,
      underMinIsrPartitions: underMinIsr,
      offlinePartitions: offline,
    };
  }

  /** `GET /v1/brokers`: registered brokers and voters that have not registered. */
  brokers(): { brokers: BrokerView[] } {
    const { store } = this.#parts;
    const image = store.image;
    const controllerId = store.controllerId();
    const voters = new Set(store.status().voters);
    const out: BrokerView[] = [];
    for (const b of image.brokers.values()) {
      const endpoint = b.endpoints[0];
      out.push({
        id: b.brokerId,
        host: endpoint?.host ?? null,
        port: endpoint?.port ?? null,
        rack: b.rack,
        // A broker that finished its controlled shutdown is fenced and keeps the flag until it
        // registers again: fenced wins.
        state: b.fenced ? "fenced" : b.inControlledShutdown ? "controlled-shutdown" : "up",
        fenced: b.fenced,
        inControlledShutdown: b.inControlledShutdown,
        isController: b.brokerId === controllerId,
        voter: voters.has(b.brokerId),
        brokerEpoch: b.brokerEpoch,
      });
    }
    for (const id of voters) {
      if (image.brokers.has(id)) continue;
      out.push({
        id,
        host: null,
        port: null,
        rack: null,
        state: "unregistered",
        fenced: true,
        inControlledShutdown: false,
        isController: id === controllerId,
        voter: true,
        brokerEpoch: null,
      });
    }
    return { brokers: out.sort((a, b) => a.id - b.id) };
  }

  /** `GET /v1/topics`, by name. */
  topics(): { topics: TopicSummaryView[] } {
    const image = this.#parts.store.image;
    const layers = this.#layers(image);
    const topics = [...image.topicsById.values()].map((t) => summarize(t, layers));
    return { topics: topics.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
  }

  /** `GET /v1/topics/{name}`. */
  topic(name: string): AdminAnswer {
    const { store, replicas } = this.#parts;
    const image = store.image;
    const t = image.topic(name);
    if (t === undefined) return { kind: "notFound", body: { error: `Unknown topic ${name}` } };
    const layers = this.#layers(image);
    const minIsr = minIsrOf(t, layers);
    const body: TopicView = {
      ...summarize(t, layers),
      configs: { ...t.configs },
      minInsyncReplicas: minIsr,
      partitionDetails: t.partitions.map((p, i) => ({
        partition: i,
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        replicas: [...p.replicas],
        isr: [...p.isr],
        underReplicated: p.isr.length < p.replicas.length,
        underMinIsr: p.isr.length < minIsr,
        offline: p.leader < 0,
        local: localReplica(replicas.getPartition(t.name, i)),
      })),
    };
    return { kind: "ok", body };
  }

  /** `GET /v1/groups`: the groups this node coordinates, by id. */
  groups(): GroupsView {
    const { nodeId, groups, replicas } = this.#parts;
    const summaries = groups.read((core) =>
      core.groupIds().flatMap((id) => {
        const g = core.group(id);
        if (g === undefined) return [];
        const offsets = this.#offsets(g);
        return [{
          groupId: g.groupId,
          state: g.state,
          protocolType: g.protocolType,
          protocol: g.protocolName,
          generationId: g.generationId,
          members: g.members.length,
          partitions: offsets.length,
          lag: sumLag(offsets),
          partitionsWithoutEnd: offsets.filter((o) => o.lag === null).length,
        }];
      })
    );
    let led = 0;
    for (const p of replicas.partitions()) {
      if (p.topic === OFFSETS_TOPIC && !p.closed && p.isLeader) led++;
    }
    return {
      nodeId,
      offsetsPartitionsLed: led,
      offsetsPartitions: OFFSETS_TOPIC_PARTITIONS,
      groups: summaries,
    };
  }

  /**
   * `GET /v1/groups/{id}`; for a group coordinated elsewhere, `notFound` naming the node that
   * coordinates it (the leader of its `__consumer_offsets` partition).
   */
  group(groupId: string): AdminAnswer {
    const { nodeId, groups, store } = this.#parts;
    const g = groups.read((core) => core.group(groupId));
    if (g !== undefined) {
      const offsets = this.#offsets(g);
      const body: GroupView = {
        groupId: g.groupId,
        coordinator: nodeId,
        state: g.state,
        protocolType: g.protocolType,
        protocol: g.protocolName,
        generationId: g.generationId,
        leaderId: g.leaderId,
        members: g.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          sessionTimeoutMs: m.sessionTimeoutMs,
          assignment: g.protocolType === "consumer" ? consumerAssignment(m.assignment) : null,
        })),
        offsets,
        lag: sumLag(offsets),
      };
      return { kind: "ok", body };
    }
    const offsetsPartition = groupPartition(groupId, OFFSETS_TOPIC_PARTITIONS);
    const image = store.image;
    const leader = image.topic(OFFSETS_TOPIC)?.partitions[offsetsPartition]?.leader ?? -1;
    const endpoint = image.brokers.get(leader)?.endpoints[0];
    const coordinator = leader < 0
      ? null
      : { id: leader, host: endpoint?.host ?? null, port: endpoint?.port ?? null };
    const where = { groupId, offsetsPartition, coordinator };
    const code = groups.coordinatorError(groupId);
    if (code === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) {
      return {
        kind: "unavailable",
        body: {
          error: `Node ${nodeId} is loading the groups of partition ${offsetsPartition}`,
          ...where,
        },
      };
    }
    if (code === ErrorCode.NONE) {
      return { kind: "notFound", body: { error: `Unknown group ${groupId}`, ...where } };
    }
    return {
      kind: "notFound",
      body: {
        error: coordinator === null
          ? `Group ${groupId} has no coordinator: partition ${offsetsPartition} of ${OFFSETS_TOPIC} has no leader`
          : `Group ${groupId} is coordinated by node ${leader}, not by node ${nodeId}`,
        ...where,
      },
    };
  }

  /** `GET /v1/throughput`. */
  throughput(): ThroughputView {
    const { nodeId, clock, metrics } = this.#parts;
    const byTopic = new Map<
      string,
      { topic: string; bytesIn: number; bytesOut: number; messagesIn: number }
    >();
    const add = (
      counter: BrokerMetrics["bytesIn"],
      field: "bytesIn" | "bytesOut" | "messagesIn",
    ): number => {
      let total = 0;
      for (const { labels, value } of counter.series()) {
        total += value;
        const topic = labels.topic;
        if (topic === undefined) continue;
        let e = byTopic.get(topic);
        if (e === undefined) {
          e = { topic, bytesIn: 0, bytesOut: 0, messagesIn: 0 };
          byTopic.set(topic, e);
        }
        e[field] += value;
      }
      return total;
    };
    return {
      nodeId,
      atMs: clock.nowMs(),
      bytesIn: add(metrics.bytesIn, "bytesIn"),
      bytesOut: add(metrics.bytesOut, "bytesOut"),
      messagesIn: add(metrics.messagesIn, "messagesIn"),
      topics: [...byTopic.values()].sort((a, b) => (a.topic < b.topic ? -1 : 1)),
    };
  }

  /** The broker defaults of topic configs on this node (for min.insync.replicas). */
  #layers(image: MetadataImage): BrokerConfigLayers {
    return image.brokerConfigLayers(this.#parts.nodeId, this.#parts.staticBrokerConfigs);
  }

  /** A group's committed offsets, with their lag where this node has a replica. */
  #offsets(g: GroupSnapshot): GroupOffsetView[] {
    const { replicas } = this.#parts;
    return g.offsets.map((o): GroupOffsetView => {
      const p = replicas.getPartition(o.topic, o.partition);
      const known = p !== undefined && !p.closed;
      // As the consumer-lag metric: read_committed consumers stop at the LSO.
      const end = known ? p.lastStableOffset : null;
      return {
        topic: o.topic,
        partition: o.partition,
        committedOffset: o.offset,
        metadata: o.metadata,
        commitTimestampMs: o.commitTimestampMs,
        endOffset: end,
        endFrom: known ? (p.isLeader ? "leader" : "follower") : null,
        lag: end === null ? null : Math.max(0, end - o.offset),
      };
    }).sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }
}

function sumLag(offsets: readonly GroupOffsetView[]): number {
  let total = 0;
  for (const o of offsets) total += o.lag ?? 0;
  return total;
}

function minIsrOf(t: TopicImage, layers: BrokerConfigLayers): number {
  return topicConfigNumber(t.configs, "min.insync.replicas", layers);
}

function summarize(t: TopicImage, layers: BrokerConfigLayers): TopicSummaryView {
  const minIsr = minIsrOf(t, layers);
  const count = (pred: (p: PartitionState) => boolean) => t.partitions.filter(pred).length;
  return {
    name: t.name,
    topicId: t.topicId,
    internal: isInternalTopic(t.name),
    partitions: t.partitions.length,
    replicationFactor: Math.max(0, ...t.partitions.map((p) => p.replicas.length)),
    underReplicated: count((p) => p.isr.length < p.replicas.length),
    underMinIsr: count((p) => p.isr.length < minIsr),
    offline: count((p) => p.leader < 0),
  };
}

function localReplica(p: Partition | undefined): LocalReplicaView | null {
  if (p === undefined || p.closed) return null;
  return {
    role: p.isLeader ? "leader" : "follower",
    logStartOffset: p.log.logStartOffset,
    logEndOffset: p.log.logEndOffset,
    highWatermark: p.highWatermark,
    lastStableOffset: p.lastStableOffset,
    sizeBytes: p.log.sizeInBytes,
  };
}

/** Highest ConsumerProtocolAssignment version this codec knows. */
const ASSIGNMENT_MAX_VERSION = 3;

/** The partitions of a consumer-protocol assignment (int16 version, then the struct). */
function consumerAssignment(bytes: Uint8Array): { topic: string; partitions: number[] }[] | null {
  if (bytes.length < 2) return bytes.length === 0 ? [] : null;
  const version = new DataView(bytes.buffer, bytes.byteOffset, 2).getInt16(0);
  if (version < 0) return null;
  try {
    // A newer version's extra fields would be trailing bytes: those assignments show as null.
    const a = decodeData(
      "ConsumerProtocolAssignment",
      Math.min(version, ASSIGNMENT_MAX_VERSION),
      bytes.subarray(2),
    );
    return a.assignedPartitions.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] }));
  } catch {
    return null;
  }
}
