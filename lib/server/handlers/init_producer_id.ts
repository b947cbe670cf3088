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
 * With a transactionalId (KIP-98), the transaction coordinator of the id answers (elsewhere
 * NOT_COORDINATOR; COORDINATOR_LOAD_IN_PROGRESS while it loads): the id's producer id with
 * its epoch bumped (a new id when the epoch is exhausted), fencing older incarnations; an
 * open transaction of the previous incarnation is aborted first and the request answered
 * CONCURRENT_TRANSACTIONS, which clients retry. A `transaction.timeout.ms` above
 * `transaction.max.timeout.ms` (15 min) is INVALID_TRANSACTION_TIMEOUT; a stale
 * producerId/epoch (v3+) PRODUCER_FENCED (v4+) or INVALID_PRODUCER_EPOCH. An empty
 * transactionalId is INVALID_REQUEST, as in Kafka.
 *
 * Version notes: v2+ flexible; v3+ carries producerId/producerEpoch (see above); v4 adds
 * PRODUCER_FENCED, v5 TRANSACTION_ABORTABLE (never answered here).
 */
import { ApiKey, ErrorCode, type InitProducerIdRequest } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

function failure(code: number) {
  return respond({ throttleTimeMs: 0, errorCode: code, producerId: -1n, producerEpoch: -1 });
}

export const initProducerIdHandler: ApiHandler<typeof ApiKey.InitProducerId> = {
  apiKey: ApiKey.InitProducerId,
  minVersion: 0,
  maxVersion: 5,
  async handle(ctx, req: InitProducerIdRequest) {
    const { services, log } = ctx;
    const version = ctx.header.apiVersion;
    const hasExpected = version >= 3 && req.producerId !== -1n;
    if (version >= 3 && (req.producerId === -1n) !== (req.producerEpoch === -1)) {
      return failure(ErrorCode.INVALID_REQUEST);
    }
    const transactionalId = req.transactionalId;
    if (transactionalId !== null) {
      if (transactionalId === "") return failure(ErrorCode.INVALID_REQUEST);
      const code = services.txn.coordinatorError(transactionalId);
      if (code !== ErrorCode.NONE) return failure(code);
      const r = await services.txn.initProducerId(
        transactionalId,
        req.transactionTimeoutMs,
        hasExpected ? { producerId: req.producerId, producerEpoch: req.producerEpoch } : null,
        version,
      );
      log.debug(
        "InitProducerId for {transactionalId}: {code}, producer {producerId} epoch {epoch}",
        {
          transactionalId,
          code: r.code,
          producerId: r.producerId ?? -1n,
          epoch: r.producerEpoch ?? -1,
        },
      );
      return respond({
        throttleTimeMs: 0,
        errorCode: r.code,
        producerId: r.code === ErrorCode.NONE ? r.producerId! : -1n,
        producerEpoch: r.code === ErrorCode.NONE ? r.producerEpoch! : -1,
      });
    }
    const producerId = await services.producerIds.generateProducerId();
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
