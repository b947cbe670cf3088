/** The internal topic holding group metadata and committed offsets. */

/** Kafka's internal topic for group metadata and committed offsets. */
export const OFFSETS_TOPIC = "__consumer_offsets";
/** Kafka's `offsets.topic.num.partitions` default. */
export const OFFSETS_TOPIC_PARTITIONS = 50;
/**
 * Configs of the offsets topic, as Kafka creates it: compacted (a group's latest metadata
 * and each partition's latest commit are what a reload needs), 100 MiB segments
 * (`offsets.topic.segment.bytes`).
 */
export const OFFSETS_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  "cleanup.policy": "compact",
  "segment.bytes": "104857600",
};
