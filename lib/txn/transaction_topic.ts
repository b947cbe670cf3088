/** The internal topic holding the transaction coordinator's state. */

/** Kafka's internal topic for transactional ids and their transactions. */
export const TXN_TOPIC = "__transaction_state";
/** Kafka's `transaction.state.log.num.partitions` default. */
export const TXN_TOPIC_PARTITIONS = 50;
/** Kafka's `transaction.state.log.min.isr` default (capped at the replication factor). */
export const TXN_TOPIC_MIN_ISR = 2;
/**
 * Configs of the topic, as Kafka creates it: compacted (an id's latest state is what a
 * reload needs), 100 MiB segments (`transaction.state.log.segment.bytes`). (Kafka also sets
 * compression.type=uncompressed; the coordinator writes uncompressed batches anyway.)
 */
export const TXN_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  "cleanup.policy": "compact",
  "segment.bytes": "104857600",
};
