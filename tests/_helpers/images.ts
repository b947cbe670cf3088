/** Metadata images for unit tests of the replication and server layers. */
import { MetadataImage, type MetadataRecord } from "../../lib/metadata/mod.ts";

export const TEST_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAQ";

/**
 * Unfenced brokers `replicas` (broker n listens on 127.0.0.1:9090+n) and topic "t" whose
 * partition 0 has those replicas, all in the ISR, led by `leader`, at epoch 0.
 */
export function onePartitionImage(replicas: number[], leader: number): MetadataImage {
  const records: MetadataRecord[] = [{ type: "Cluster", clusterId: "c" }];
  for (const id of replicas) {
    records.push({
      type: "RegisterBroker",
      brokerId: id,
      incarnationId: `i${id}`,
      brokerEpoch: id,
      endpoints: [{ host: "127.0.0.1", port: 9090 + id }],
      rack: null,
      fenced: false,
    });
  }
  records.push({ type: "Topic", name: "t", topicId: TEST_TOPIC_ID, configs: {} });
  records.push({
    type: "Partition",
    topicId: TEST_TOPIC_ID,
    partitionId: 0,
    replicas,
    isr: replicas,
    leader,
    leaderEpoch: 0,
    partitionEpoch: 0,
  });
  return MetadataImage.EMPTY.applyAll(records);
}
