/**
 * The controller's inter-broker APIs (Kafka's controller listener, served here on the
 * Kafka listener of every node; a node that is not the controller answers
 * NOT_CONTROLLER): BrokerRegistration (key 62) v0-4, BrokerHeartbeat (key 63) v0-1,
 * AlterPartition (key 56) v0-3, AllocateProducerIds (key 67) v0.
 *
 * Behaviour: each runs the controller's decision (lib/metadata/controller_service.ts) and
 * answers once its records are committed. The connection that carries a broker's
 * heartbeats is remembered: when it closes (kill -9 gives EOF/RST at once) the broker is
 * fenced after a short grace instead of a whole session timeout (DESIGN §7).
 *
 * Version notes: BrokerRegistration features, log dirs and PreviousBrokerEpoch are
 * ignored (one log dir, no feature levels); AlterPartition v3's broker epochs of the new
 * ISR members are not checked beyond their registration being live.
 */
import { asControllerError } from "../../metadata/mod.ts";
import { ApiKey, ErrorCode, ZERO_UUID } from "../../protocol/mod.ts";
import { errorCodeOf } from "../../util/errors.ts";
import { type ApiHandler, respond } from "../handler.ts";

/** Connections already watched for a broker (one close hook per connection). */
const watched = new WeakSet<object>();
/**
 * Per controller (simulations run several in one process): each broker's connection that
 * carried its latest heartbeat. Only its close means the broker may be gone: an older
 * connection the broker replaced (after a timeout) can close long after, once a held
 * heartbeat on it is answered, while the new one heartbeats on.
 */
const heartbeatConnections = new WeakMap<object, Map<number, object>>();

export const brokerRegistrationHandler: ApiHandler<typeof ApiKey.BrokerRegistration> = {
  apiKey: ApiKey.BrokerRegistration,
  minVersion: 0,
  maxVersion: 4,
  async handle(ctx, req) {
    try {
      const epoch = await ctx.services.controller.registerBroker({
        brokerId: req.brokerId,
        clusterId: req.clusterId,
        incarnationId: req.incarnationId,
        endpoints: req.listeners.map((l) => ({ host: l.host, port: l.port })),
        rack: req.rack,
      });
      return respond({ errorCode: ErrorCode.NONE, brokerEpoch: BigInt(epoch) });
    } catch (err) {
      return respond({ errorCode: errorCodeOf(asControllerError(err)), brokerEpoch: -1n });
    }
  },
  errorResponse: (_req, code) => ({ errorCode: code, brokerEpoch: -1n }),
};

export const brokerHeartbeatHandler: ApiHandler<typeof ApiKey.BrokerHeartbeat> = {
  apiKey: ApiKey.BrokerHeartbeat,
  minVersion: 0,
  maxVersion: 1,
  async handle(ctx, req) {
    const controller = ctx.services.controller;
    let latest = heartbeatConnections.get(controller);
    if (latest === undefined) heartbeatConnections.set(controller, latest = new Map());
    const brokerId = req.brokerId;
    const connection = ctx.connection;
    latest.set(brokerId, connection);
    if (!watched.has(connection)) {
      watched.add(connection);
      connection.onClose(() => {
        if (latest.get(brokerId) !== connection) return;
        latest.delete(brokerId);
        controller.connectionLost(brokerId);
      });
    }
    try {
      const reply = await controller.heartbeat({
        brokerId: req.brokerId,
        brokerEpoch: Number(req.brokerEpoch),
        currentMetadataOffset: Number(req.currentMetadataOffset),
        wantFence: req.wantFence,
        wantShutDown: req.wantShutDown,
      });
      return respond({
        errorCode: reply.errorCode,
        isCaughtUp: reply.isCaughtUp,
        isFenced: reply.isFenced,
        shouldShutDown: reply.shouldShutDown,
      });
    } catch (err) {
      return respond({
        errorCode: errorCodeOf(asControllerError(err)),
        isCaughtUp: false,
        isFenced: true,
        shouldShutDown: false,
      });
    }
  },
  errorResponse: (_req, code) => ({
    errorCode: code,
    isCaughtUp: false,
    isFenced: true,
    shouldShutDown: false,
  }),
};

export const alterPartitionHandler: ApiHandler<typeof ApiKey.AlterPartition> = {
  apiKey: ApiKey.AlterPartition,
  minVersion: 0,
  maxVersion: 3,
  async handle(ctx, req) {
    const version = ctx.header.apiVersion;
    const image = ctx.services.metadata.image;
    if (!ctx.services.metadata.isController()) {
      return respond({ errorCode: ErrorCode.NOT_CONTROLLER, topics: [] });
    }
    const topics = [];
    for (const t of req.topics) {
      const topicId = version >= 2 ? t.topicId : image.topic(t.topicName)?.topicId ?? ZERO_UUID;
      const partitions = [];
      for (const p of t.partitions) {
        const newIsr = version >= 3 ? p.newIsrWithEpochs.map((b) => b.brokerId) : p.newIsr;
        let answer;
        try {
          const result = await ctx.services.controller.alterPartition({
            brokerId: req.brokerId,
            brokerEpoch: Number(req.brokerEpoch),
            topicId,
            partitionId: p.partitionIndex,
            leaderEpoch: p.leaderEpoch,
            partitionEpoch: p.partitionEpoch,
            newIsr,
            ...(version >= 1 ? { leaderRecoveryState: p.leaderRecoveryState === 1 ? 1 : 0 } : {}),
          });
          answer = result.partition && result.errorCode === ErrorCode.NONE
            ? {
              partitionIndex: p.partitionIndex,
              errorCode: ErrorCode.NONE,
              leaderId: result.partition.leader,
              leaderEpoch: result.partition.leaderEpoch,
              isr: [...result.partition.isr],
              leaderRecoveryState: result.partition.leaderRecoveryState,
              partitionEpoch: result.partition.partitionEpoch,
            }
            : partitionError(p.partitionIndex, result.errorCode);
        } catch (err) {
          answer = partitionError(p.partitionIndex, errorCodeOf(asControllerError(err)));
        }
        partitions.push(answer);
      }
      topics.push({ topicName: t.topicName, topicId, partitions });
    }
    return respond({ errorCode: ErrorCode.NONE, topics });
  },
  errorResponse: (_req, code) => ({ errorCode: code, topics: [] }),
};

function partitionError(partitionIndex: number, errorCode: number) {
  return { partitionIndex, errorCode, leaderId: -1, leaderEpoch: -1, isr: [], partitionEpoch: -1 };
}

export const allocateProducerIdsHandler: ApiHandler<typeof ApiKey.AllocateProducerIds> = {
  apiKey: ApiKey.AllocateProducerIds,
  minVersion: 0,
  maxVersion: 0,
  async handle(ctx, req) {
    try {
      const block = await ctx.services.controller.allocateProducerIds(
        req.brokerId,
        Number(req.brokerEpoch),
      );
      return respond({
        errorCode: ErrorCode.NONE,
        producerIdStart: BigInt(block.start),
        producerIdLen: block.length,
      });
    } catch (err) {
      return respond({
        errorCode: errorCodeOf(asControllerError(err)),
        producerIdStart: -1n,
        producerIdLen: 0,
      });
    }
  },
  errorResponse: (_req, code) => ({ errorCode: code, producerIdStart: -1n, producerIdLen: 0 }),
};
