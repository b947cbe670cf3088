/**
 * @module
 * Cluster metadata: the records that change it, the {@linkcode MetadataImage} every node
 * answers from, the controller's decisions as pure functions, topic config rules, and
 * the store that persists records (today a one-node journal; the Raft log later).
 * Must not touch partition data.
 */
export type {
  ClusterRecord,
  ConfigRecord,
  MetadataRecord,
  PartitionRecord,
  RemoveTopicRecord,
  TopicRecord,
} from "./records.ts";
export { MetadataImage, type PartitionState, type TopicImage } from "./metadata_image.ts";
export {
  assignReplicas,
  type ControllerContext,
  type ControllerDefaults,
  type CreateTopicSpec,
  planCreatePartitions,
  planCreateTopic,
  planDeleteTopic,
  type TopicCreationPlan,
} from "./controller.ts";
export {
  TOPIC_CONFIG_DEFS,
  topicCollisionKey,
  topicConfigNumber,
  topicConfigValue,
  validateTopicConfigs,
  validateTopicName,
} from "./topic_config.ts";
export { type ImageListener, MetadataStore } from "./metadata_store.ts";
export { RecordJournal } from "./record_journal.ts";
export { randomUuid } from "./uuid.ts";
