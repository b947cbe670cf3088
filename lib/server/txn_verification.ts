/**
 * Transaction verification before a transaction's first batch on a partition (Kafka's
 * `transaction.partition.verification.enable`, KIP-890 part 1): the partition leader asks
 * the transactional id's coordinator whether the partition was added to the producer's open
 * transaction (in process when the coordinator is this node, else AddPartitionsToTxn v4
 * with verifyOnly). Without it, a batch that arrives after its transaction was aborted (a
 * producer's late retry, a zombie) would open a transaction no coordinator knows about, and
 * the partition's last stable offset would stay behind it forever.
 */
import { ApiKey, ErrorCode } from "../protocol/mod.ts";
import { TXN_TOPIC } from "../txn/mod.ts";
import { getLogger } from "../util/log.ts";
import type { BrokerServices } from "./services.ts";

const log = getLogger(["tidelog", "txn"]);

/** How long asking a remote coordinator may take before the produce is answered retriable. */
const VERIFY_CALL_MS = 5000;
/** The first AddPartitionsToTxn version with verifyOnly. */
const VERIFY_VERSION = 4;

/**
 * NONE if `topic`-`partition` is in the open transaction of `transactionalId` with this
 * producer id and epoch; otherwise the code the produce answers with: INVALID_TXN_STATE
 * (not added: the transaction is over or never included it), INVALID_PRODUCER_EPOCH (the
 * producer was fenced), or NOT_ENOUGH_REPLICAS (the coordinator could not be asked now;
 * clients retry it, as Kafka maps those errors).
 */
export async function verifyTransactionPartition(
  services: BrokerServices,
  txn: { transactionalId: string; producerId: bigint; producerEpoch: number },
  topic: string,
  partition: number,
): Promise<ErrorCode> {
  const coordinatorPartition = services.txn.partitionOf(txn.transactionalId);
  const leader =
    services.metadata.image.topic(TXN_TOPIC)?.partitions[coordinatorPartition]?.leader ?? -1;
  let code: ErrorCode;
  if (leader < 0) {
    code = ErrorCode.COORDINATOR_NOT_AVAILABLE;
  } else if (leader === services.config.nodeId) {
    const r = services.txn.verify(txn, [{ topic, partition }]);
    code = typeof r === "number" ? r : r[0]!;
  } else {
    try {
      const response = await services.brokers.call(
        leader,
        "verify",
        VERIFY_CALL_MS,
        (conn) =>
          conn.request(ApiKey.AddPartitionsToTxn, VERIFY_VERSION, {
            transactions: [{
              transactionalId: txn.transactionalId,
              producerId: txn.producerId,
              producerEpoch: txn.producerEpoch,
              verifyOnly: true,
              topics: [{ name: topic, partitions: [partition] }],
            }],
          }),
      );
      code = (response.errorCode ||
        response.resultsByTransaction[0]?.topicResults[0]?.resultsByPartition[0]
          ?.partitionErrorCode ||
        ErrorCode.NONE) as ErrorCode;
    } catch (err) {
      log.debug(
        "Cannot verify the transaction of {transactionalId} with broker {leader}: {error}",
        {
          transactionalId: txn.transactionalId,
          leader,
          error: err,
        },
      );
      code = ErrorCode.NETWORK_EXCEPTION;
    }
  }
  switch (code) {
    case ErrorCode.NONE:
    case ErrorCode.INVALID_TXN_STATE:
      return code;
    case ErrorCode.PRODUCER_FENCED:
    case ErrorCode.INVALID_PRODUCER_EPOCH:
      return ErrorCode.INVALID_PRODUCER_EPOCH;
    case ErrorCode.INVALID_PRODUCER_ID_MAPPING:
      return ErrorCode.INVALID_TXN_STATE;
    default:
      return ErrorCode.NOT_ENOUGH_REPLICAS;
  }
}
