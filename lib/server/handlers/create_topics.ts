/**
 * CreateTopics (key 19): v0-7.
 *
 * Behaviour: each topic is validated and created through the controller (name rules,
 * '.'/'_' collisions, partitions and replication factor, manual assignments, supported
 * configs with valid values); failures are per topic with Kafka's codes and messages
 * (TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
 * INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_CONFIG, and
 * INVALID_REQUEST for a name given twice). `validateOnly` (v1+) checks without creating.
 * The topic exists on this node when the response is sent.
 *
 * Version notes: v5+ returns the resolved partitions, replication factor and configs;
 * v7+ the topic id.
 */
import { ApiKey, type CreateTopicsRequest, ErrorCode, ZERO_UUID } from "../../protocol/mod.ts";
import { TidelogError } from "../../util/errors.ts";
import { type ApiHandler, respond } from "../handler.ts";
import { forwardToController } from "../forward.ts";
import { createTopic, duplicateNames } from "../topics.ts";
import { describeTopicConfigs } from "./topic_configs.ts";

export const createTopicsHandler: ApiHandler<typeof ApiKey.CreateTopics> = {
  apiKey: ApiKey.CreateTopics,
  minVersion: 0,
  maxVersion: 7,
  async handle(ctx, req: CreateTopicsRequest) {
    const forwarded = await forwardToController(
      ctx,
      ApiKey.CreateTopics,
      req,
      (r) => r.topics.some((t) => t.errorCode === ErrorCode.NOT_CONTROLLER),
      (image, r) =>
        req.validateOnly ||
        r.topics.every((t) => t.errorCode !== ErrorCode.NONE || image.topic(t.name) !== undefined),
    );
    if (forwarded) return respond(forwarded);
    const duplicates = duplicateNames(req.topics.map((t) => t.name));
    const topics = [];
    for (const t of req.topics) {
      const base = {
        name: t.name,
        topicId: ZERO_UUID,
        numPartitions: -1,
        replicationFactor: -1,
        configs: [],
      };
      if (duplicates.has(t.name)) {
        topics.push({
          ...base,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: "Create topics request from client contained duplicate topic names.",
        });
        continue;
      }
      try {
        const plan = await createTopic(ctx.services, t, req.validateOnly);
        topics.push({
          ...base,
          topicId: plan.topicId,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          numPartitions: plan.numPartitions,
          replicationFactor: plan.replicationFactor,
          configs: describeTopicConfigs(
            plan.configs,
            ctx.services.metadata.image.brokerConfigLayers(
              ctx.services.config.nodeId,
              ctx.services.config.staticBrokerConfigs,
            ),
          ).map(({ synonyms: _, ...c }) => c),
        });
      } catch (err) {
        if (!(err instanceof TidelogError)) throw err;
        ctx.log.info("CreateTopics {topic} refused: {message}", {
          topic: t.name,
          message: err.message,
        });
        topics.push({ ...base, errorCode: err.code, errorMessage: err.message });
      }
    }
    return respond({ topics });
  },
  errorResponse: (req, code) => ({
    topics: req.topics.map((t) => ({ name: t.name, errorCode: code, topicId: ZERO_UUID })),
  }),
};
