/**
 * Metadata (key 3): v0-12.
 *
 * Behaviour: brokers, cluster id, controller id and the requested topics with each
 * partition's leader, leader epoch, replicas and ISR, from the current MetadataImage.
 * A null topic list (v1+) or an empty one (v0) means all topics. A missing topic is
 * auto-created when both `auto.create.topics.enable` and the request allow it
 * (requests before v4 always allow it); otherwise UNKNOWN_TOPIC_OR_PARTITION. An
 * illegal name gets INVALID_TOPIC_EXCEPTION.
 *
 * Version notes: v10+ may name topics by id only (unknown id → UNKNOWN_TOPIC_ID);
 * v8+ authorized operations are not computed (no ACLs), so the "not requested" sentinel
 * is returned.
 */
import type { TopicImage } from "../../metadata/mod.ts";
import { ApiKey, ErrorCode, type MetadataRequest, ZERO_UUID } from "../../protocol/mod.ts";
import { errorCodeOf } from "../../util/errors.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { BrokerServices } from "../services.ts";
import { getOrAutoCreateTopic, isInternalTopic } from "../topics.ts";

/**
 * The live brokers as Metadata and DescribeCluster describe them: registered and not
 * fenced, from the metadata image (Kafka lists only unfenced brokers).
 */
export function brokerEndpoints(
  services: BrokerServices,
): { nodeId: number; host: string; port: number }[] {
  const image = services.metadata.image;
  return image.liveBrokers().flatMap((id) => {
    const e = image.brokers.get(id)!.endpoints[0];
    return e ? [{ nodeId: id, host: e.host, port: e.port }] : [];
  });
}

/** `nodeEndpoints` (KIP-951) for the given broker ids, each once, if registered. */
export function nodeEndpoints(
  services: BrokerServices,
  ids: Iterable<number>,
): { nodeId: number; host: string; port: number; rack: null }[] {
  const image = services.metadata.image;
  const out = [];
  for (const id of new Set(ids)) {
    const e = image.brokers.get(id)?.endpoints[0];
    if (e) out.push({ nodeId: id, host: e.host, port: e.port, rack: null });
  }
  return out;
}

/**
 * The leader to tell clients about: the image's, except this node itself while it leads
 * nothing (cut off from the controller quorum, or not caught up yet). Its image may be
 * stale and another broker may lead by now; -1 sends clients to ask the other brokers.
 */
export function leaderForClients(services: BrokerServices, leader: number): number {
  return leader === services.config.nodeId && services.replicas.leadershipSuspended ? -1 : leader;
}

/** The controller id Metadata and DescribeCluster report: the Raft leader, or -1. */
export function controllerIdOf(services: BrokerServices): number {
  return services.metadata.controllerId() ?? -1;
}

/**
 * Every topic operation (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
 * ALTER_CONFIGS as a bit set): with no authorizer all are allowed, as Kafka reports them
 * (always in DescribeTopicPartitions, in Metadata when asked).
 */
export const ALL_TOPIC_OPERATIONS = 3576;

/** A Metadata topic entry for an existing topic. */
function describeTopicWith(
  services: BrokerServices,
  topic: TopicImage,
  live: ReadonlySet<number>,
  withOperations: boolean,
) {
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: isInternalTopic(topic.name),
    // Asked for (v8+): with no authorizer every operation is allowed.
    ...(withOperations ? { topicAuthorizedOperations: ALL_TOPIC_OPERATIONS } : {}),
    partitions: topic.partitions.map((p, partitionIndex) => {
      const leader = leaderForClients(services, p.leader);
      return {
        errorCode: leader === -1 ? ErrorCode.LEADER_NOT_AVAILABLE : ErrorCode.NONE,
        partitionIndex,
        leaderId: leader,
        leaderEpoch: p.leaderEpoch,
        replicaNodes: [...p.replicas],
        isrNodes: [...p.isr],
        offlineReplicas: p.replicas.filter((r) => !live.has(r)),
      };
    }),
  };
}

function topicError(name: string | null, topicId: string, code: number) {
  return { errorCode: code, name, topicId, isInternal: false, partitions: [] };
}

export const metadataHandler: ApiHandler<typeof ApiKey.Metadata> = {
  apiKey: ApiKey.Metadata,
  minVersion: 0,
  maxVersion: 12,
  async handle(ctx, req: MetadataRequest) {
    const { services } = ctx;
    const version = ctx.header.apiVersion;
    const allowAuto = version < 4 || req.allowAutoTopicCreation;
    const all = req.topics === null || (version === 0 && req.topics.length === 0);
    const topics = [];
    const live = new Set(services.metadata.image.liveBrokers());
    const withOperations = version >= 8 && req.includeTopicAuthorizedOperations;
    const describeTopic = (t: TopicImage) => describeTopicWith(services, t, live, withOperations);
    if (all) {
      for (const t of services.metadata.image.topicsByName.values()) topics.push(describeTopic(t));
    } else {
      for (const wanted of req.topics ?? []) {
        if (wanted.name === null) {
          const t = services.metadata.image.topicsById.get(wanted.topicId);
          topics.push(
            t ? describeTopic(t) : topicError(null, wanted.topicId, ErrorCode.UNKNOWN_TOPIC_ID),
          );
          continue;
        }
        try {
          const t = await getOrAutoCreateTopic(services, wanted.name, allowAuto);
          topics.push(
            t
              ? describeTopic(t)
              : topicError(wanted.name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
          );
        } catch (err) {
          topics.push(topicError(wanted.name, ZERO_UUID, errorCodeOf(err)));
        }
      }
    }
    return respond({
      brokers: brokerEndpoints(services).map((b) => ({ ...b, rack: null })),
      clusterId: services.metadata.image.clusterId,
      controllerId: controllerIdOf(services),
      topics,
    });
  },
  errorResponse: (req, code) => ({
    topics: (req.topics ?? []).map((t) => topicError(t.name, t.topicId, code)),
  }),
};
