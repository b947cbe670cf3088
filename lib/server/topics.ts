/**
 * Topic creation shared by CreateTopics, and by Metadata and Produce when
 * `auto.create.topics.enable` lets them create a missing topic.
 */
import {
  BecameControllerError,
  type CreateTopicSpec,
  planCreateTopic,
  type TopicCreationPlan,
  type TopicImage,
  validateTopicName,
} from "../metadata/mod.ts";
import {
  OFFSETS_TOPIC,
  OFFSETS_TOPIC_CONFIGS,
  OFFSETS_TOPIC_PARTITIONS,
} from "../group/offsets_topic.ts";
import { ApiKey, ErrorCode } from "../protocol/mod.ts";
import {
  TXN_TOPIC,
  TXN_TOPIC_CONFIGS,
  TXN_TOPIC_MIN_ISR,
  TXN_TOPIC_PARTITIONS,
} from "../txn/mod.ts";
import { TidelogError } from "../util/errors.ts";
import { getLogger } from "../util/log.ts";
import type { BrokerServices } from "./services.ts";

const log = getLogger(["tidelog", "server"]);

/**
 * Kafka's internal topics: the coordinators' state. Shown as internal in Metadata, never
 * deleted, and written only by their coordinators (a client's Produce gets
 * INVALID_TOPIC_EXCEPTION, as Kafka's "Cannot append to internal topic").
 */
export function isInternalTopic(name: string): boolean {
  return name === OFFSETS_TOPIC || name === TXN_TOPIC;
}

/**
 * Creates a topic unless `validateOnly`; resolves with the plan (ids, resolved numbers).
 * Throws {@linkcode TidelogError} with Kafka's code.
 */
export function createTopic(
  services: BrokerServices,
  spec: CreateTopicSpec,
  validateOnly: boolean,
): Promise<TopicCreationPlan> {
  return services.metadata.propose((image) => {
    const plan = planCreateTopic(image, spec, services.controllerContext());
    if (!validateOnly) {
      log.info("Creating topic {topic} ({id}) with {partitions} partition(s)", {
        topic: spec.name,
        id: plan.topicId,
        partitions: plan.numPartitions,
      });
    }
    return { records: validateOnly ? [] : plan.records, result: plan };
  });
}

/**
 * Creates a topic on the controller, wherever it is (a CreateTopics request when this
 * node is not the controller), and resolves once this node's image holds it.
 * Throws {@linkcode TidelogError} with Kafka's code.
 */
export async function createTopicOnController(
  services: BrokerServices,
  spec: CreateTopicSpec,
): Promise<void> {
  if (services.metadata.isController()) {
    try {
      await createTopic(services, spec, false);
      return;
    } catch (err) {
      // Lost the controller role before planning: ask the new one.
      if (!(err instanceof TidelogError && err.code === ErrorCode.NOT_CONTROLLER)) throw err;
    }
  }
  let response;
  try {
    response = await forwardCreateTopic(services, spec);
  } catch (err) {
    if (!(err instanceof BecameControllerError)) throw err;
    await createTopic(services, spec, false);
    return;
  }
  const result = response.topics[0];
  if (!result) throw new TidelogError(ErrorCode.UNKNOWN_SERVER_ERROR, "Empty CreateTopics answer");
  if (result.errorCode !== ErrorCode.NONE) {
    throw new TidelogError(
      result.errorCode as ErrorCode,
      result.errorMessage ?? `Cannot create topic ${spec.name}`,
    );
  }
  await services.metadata.waitForImage((image) => image.topic(spec.name) !== undefined, 5000);
}

function forwardCreateTopic(services: BrokerServices, spec: CreateTopicSpec) {
  return services.controllerChannel.forward(
    ApiKey.CreateTopics,
    7,
    {
      topics: [{
        name: spec.name,
        numPartitions: spec.numPartitions,
        replicationFactor: spec.replicationFactor,
        assignments: spec.assignments.map((a) => ({
          partitionIndex: a.partitionIndex,
          brokerIds: [...a.brokerIds],
        })),
        configs: spec.configs.map((c) => ({ name: c.name, value: c.value })),
      }],
      timeoutMs: 5000,
      validateOnly: false,
    },
    (r) => r.topics.some((t) => t.errorCode === ErrorCode.NOT_CONTROLLER),
  );
}

/**
 * The topic named `name`, auto-creating it with the broker defaults when allowed.
 * Returns undefined when it does not exist and may not be created; throws
 * INVALID_TOPIC_EXCEPTION for an illegal name.
 */
export async function getOrAutoCreateTopic(
  services: BrokerServices,
  name: string,
  allowAutoCreate: boolean,
): Promise<TopicImage | undefined> {
  const existing = services.metadata.image.topic(name);
  if (existing) return existing;
  validateTopicName(name);
  if (!allowAutoCreate || !services.config.autoCreateTopics) return undefined;
  try {
    await createTopicOnController(
      services,
      { name, numPartitions: -1, replicationFactor: -1, assignments: [], configs: [] },
    );
  } catch (err) {
    // Another request may have created it meanwhile; that is success for us.
    if (!(err instanceof TidelogError && err.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw err;
  }
  return services.metadata.image.topic(name);
}

/**
 * Creates `__consumer_offsets` (50 partitions) if it does not exist yet, as Kafka does
 * on the first FindCoordinator for a group. Concurrent callers share one creation and all
 * resolve only once its partitions are open and loaded by the group coordinator.
 */
export function ensureOffsetsTopic(services: BrokerServices): Promise<void> {
  return services.groups.whenOffsetsTopicReady(async () => {
    if (services.metadata.image.topic(OFFSETS_TOPIC)) return;
    try {
      await createTopicOnController(
        services,
        {
          name: OFFSETS_TOPIC,
          numPartitions: OFFSETS_TOPIC_PARTITIONS,
          // Kafka's offsets.topic.replication.factor (3) as far as the cluster has nodes,
          // and no more than the brokers live now: a consumer group must work while a
          // node is down (Kafka would refuse it until every replica's broker is back).
          replicationFactor: Math.max(
            1,
            Math.min(
              services.config.offsetsTopicReplicationFactor,
              services.metadata.image.liveBrokers().length,
            ),
          ),
          assignments: [],
          configs: Object.entries(OFFSETS_TOPIC_CONFIGS).map(([name, value]) => ({ name, value })),
        },
      );
    } catch (err) {
      if (!(err instanceof TidelogError && err.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw err;
    }
  });
}

/**
 * Makes sure `__transaction_state` exists (created as Kafka does on the first transactional
 * FindCoordinator or InitProducerId) and its hosted partitions are loaded.
 */
export function ensureTransactionTopic(services: BrokerServices): Promise<void> {
  return services.txn.whenTopicReady(async () => {
    if (services.metadata.image.topic(TXN_TOPIC)) return;
    // As the offsets topic: Kafka's replication factor (3) as far as the cluster has
    // nodes and no more than are live; min.insync.replicas 2 where the factor allows.
    const replicationFactor = Math.max(
      1,
      Math.min(
        services.config.offsetsTopicReplicationFactor,
        services.metadata.image.liveBrokers().length,
      ),
    );
    const configs = {
      ...TXN_TOPIC_CONFIGS,
      "min.insync.replicas": String(Math.min(TXN_TOPIC_MIN_ISR, replicationFactor)),
    };
    try {
      await createTopicOnController(services, {
        name: TXN_TOPIC,
        numPartitions: TXN_TOPIC_PARTITIONS,
        replicationFactor,
        assignments: [],
        configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
      });
    } catch (err) {
      if (!(err instanceof TidelogError && err.code === ErrorCode.TOPIC_ALREADY_EXISTS)) throw err;
    }
  });
}

/** Names that occur more than once in a request (Kafka refuses those with INVALID_REQUEST). */
export function duplicateNames(names: Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const n of names) (seen.has(n) ? dups : seen).add(n);
  return dups;
}
