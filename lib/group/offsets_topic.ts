/** The internal topic holding group metadata and committed offsets. */

/** Kafka's internal topic for group metadata and committed offsets. */
export const OFFSETS_TOPIC = "__consumer_offsets";
/** Kafka's `offsets.topic.num.partitions` default. */
export const OFFSETS_TOPIC_PARTITIONS = 50;
/**
 * Configs of the offsets topic. Kafka compacts it; compaction is not implemented, so
 * nothing may be deleted by retention (a reload replays the partition from its start).
 */
export const OFFSETS_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  "retention.ms": "-1",
  "segment.bytes": "104857600",
};
