/**
 * InitProducerId (key 22): v0-5.
 *
 * Behaviour: an idempotent producer (null transactionalId) gets a new producer id with
 * epoch 0. Ids come from blocks of 1000 reserved through the metadata log (a
 * `ProducerIds` record, fsynced before any id of the block is handed out), so no id is
 * ever given twice, even after a restart.
 *
 * Given a producerId and epoch (v3+, KIP-360: a producer bumping its epoch after
 * UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER or a timed-out batch), Kafka's
 * transaction coordinator, for a null transactionalId, "blindly accepts the request and
 * returns a new producerId" (TransactionCoordinator.handleInitProducerId): it keeps no
 * epoch per idempotent producer, so there is nothing to bump or fence against. We do the
 * same, which is always safe: the new id starts with fresh state on every partition. A
 * producerId without an epoch, or the reverse, is INVALID_REQUEST (KafkaApis).
 *
 * Transactions are not supported. A non-null transactionalId gets
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED: both the Java client and librdkafka treat it as
 * fatal for `initTransactions()`, so the application fails at once with an error naming
 * the transactional id. The codes Kafka uses when a coordinator is merely unavailable
 * (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) are
 * retriable: clients would retry until `max.block.ms` or `transaction.timeout.ms` and then
 * report a misleading timeout. An empty transactionalId is INVALID_REQUEST, as in Kafka.
 *
 * Version notes: v2+ flexible; v3+ carries producerId/producerEpoch (see above); v4 and
 * v5 only add error codes (PRODUCER_FENCED, TRANSACTION_ABORTABLE) that concern
 * transactions.
 */
import { ProducerIdManager } from "../../producer/mod.ts";
import type { BrokerServices } from "../services.ts";
import { ApiKey, ErrorCode, type InitProducerIdRequest } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

/** One allocator per node (keyed by its services). */
const managers = new WeakMap<BrokerServices, ProducerIdManager>();

/**
 * Blocks of ids come from the controller (AllocateProducerIds when it is another node);
 * the controller decides the block size, PRODUCER_ID_BLOCK_SIZE, as the manager expects.
 */
function producerIdManager(services: BrokerServices): ProducerIdManager {
  let manager = managers.get(services);
  if (manager === undefined) {
    manager = new ProducerIdManager(async () => {
      const block = await services.controllerChannel.allocateProducerIds(
        services.config.nodeId,
        services.lifecycle.brokerEpoch,
      );
      return block.start;
    });
    managers.set(services, manager);
  }
  return manager;
}

function failure(code: number) {
  return respond({ throttleTimeMs: 0, errorCode: code, producerId: -1n, producerEpoch: -1 });
}

export const initProducerIdHandler: ApiHandler<typeof ApiKey.InitProducerId> = {
  apiKey: ApiKey.InitProducerId,
  minVersion: 0,
  maxVersion: 5,
  async handle(ctx, req: InitProducerIdRequest) {
    const { services, log } = ctx;
    if (req.transactionalId !== null) {
      log.info(
        "InitProducerId for transactional id {transactionalId} refused: transactions are not supported",
        { transactionalId: req.transactionalId },
      );
      return failure(
        req.transactionalId === ""
          ? ErrorCode.INVALID_REQUEST
          : ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
      );
    }
    if ((req.producerId === -1n) !== (req.producerEpoch === -1)) {
      return failure(ErrorCode.INVALID_REQUEST);
    }
    const producerId = await producerIdManager(services).generateProducerId();
    log.debug("Producer id {producerId} for an idempotent producer (was {previous})", {
      producerId,
      previous: req.producerId,
    });
    return respond({ throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId, producerEpoch: 0 });
  },
  errorResponse: (_req, code) => ({
    throttleTimeMs: 0,
    errorCode: code,
    producerId: -1n,
    producerEpoch: -1,
  }),
};
