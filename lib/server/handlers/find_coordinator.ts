/**
 * FindCoordinator (key 10): v0-6.
 *
 * Behaviour: the coordinator of a group is the leader of partition
 * abs(hash(group)) % 50 of __consumer_offsets (Kafka's placement), which is created on
 * the first request, as Kafka does. The empty group id is a valid id (as in Kafka).
 * The coordinator of a transactional id (key type 1) is likewise the leader of its
 * partition of __transaction_state, created on the first request. Share groups (key type
 * 2) are not supported: INVALID_REQUEST with a message, so that clients fail clearly
 * instead of retrying forever.
 *
 * Version notes: v0 has only a group key; v1+ a key type; v4+ batches keys, each with
 * its own result.
 */
import { groupPartition, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS } from "../../group/mod.ts";
import { ApiKey, ErrorCode, type FindCoordinatorRequest } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { BrokerServices } from "../services.ts";
import { ensureOffsetsTopic, ensureTransactionTopic } from "../topics.ts";
import { TXN_TOPIC, TXN_TOPIC_PARTITIONS } from "../../txn/mod.ts";
import { brokerEndpoints } from "./metadata.ts";

const KEY_TYPE_GROUP = 0;
const KEY_TYPE_TRANSACTION = 1;

interface CoordinatorAnswer {
  key: string;
  nodeId: number;
  host: string;
  port: number;
  errorCode: number;
  errorMessage: string | null;
}

/** The answer for a key that has no coordinator. */
function failed(
  key: string,
  errorCode: number,
  errorMessage: string | null = null,
): CoordinatorAnswer {
  return { key, nodeId: -1, host: "", port: -1, errorCode, errorMessage };
}

function locate(services: BrokerServices, key: string, keyType: number): CoordinatorAnswer {
  const [name, partitions] = keyType === KEY_TYPE_TRANSACTION
    ? [TXN_TOPIC, TXN_TOPIC_PARTITIONS]
    : [OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS];
  const topic = services.metadata.image.topic(name);
  const leader = topic?.partitions[groupPartition(key, partitions)]?.leader ?? -1;
  const broker = brokerEndpoints(services).find((b) => b.nodeId === leader);
  if (!broker) {
    return failed(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, "The coordinator is not available.");
  }
  return {
    key,
    nodeId: broker.nodeId,
    host: broker.host,
    port: broker.port,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
  };
}

/** v4+ lists one answer per key; earlier versions carry the single answer at top level. */
function toBody(answers: CoordinatorAnswer[], version: number) {
  if (version >= 4) return { coordinators: answers };
  const a = answers[0]!;
  return {
    errorCode: a.errorCode,
    errorMessage: a.errorMessage,
    nodeId: a.nodeId,
    host: a.host,
    port: a.port,
  };
}

function keysOf(req: FindCoordinatorRequest, version: number): string[] {
  return version >= 4 ? req.coordinatorKeys : [req.key];
}

export const findCoordinatorHandler: ApiHandler<typeof ApiKey.FindCoordinator> = {
  apiKey: ApiKey.FindCoordinator,
  minVersion: 0,
  maxVersion: 6,
  async handle(ctx, req: FindCoordinatorRequest) {
    const version = ctx.header.apiVersion;
    const keys = keysOf(req, version);
    const keyType = version >= 1 ? req.keyType : KEY_TYPE_GROUP;
    if (keyType !== KEY_TYPE_GROUP && keyType !== KEY_TYPE_TRANSACTION) {
      const message = `Coordinator key type ${keyType} is not supported`;
      return respond(
        toBody(keys.map((key) => failed(key, ErrorCode.INVALID_REQUEST, message)), version),
      );
    }
    try {
      if (keyType === KEY_TYPE_TRANSACTION) await ensureTransactionTopic(ctx.services);
      else await ensureOffsetsTopic(ctx.services);
    } catch (err) {
      const topic = keyType === KEY_TYPE_TRANSACTION ? TXN_TOPIC : OFFSETS_TOPIC;
      ctx.log.warn("Cannot create {topic}: {error}", { topic, error: err });
      // As Kafka: the coordinator is "not available" until its topic exists (clients
      // retry that; they treat e.g. INVALID_REPLICATION_FACTOR as fatal).
      return respond(
        toBody(
          keys.map((key) =>
            failed(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, (err as Error).message)
          ),
          version,
        ),
      );
    }
    return respond(
      toBody(
        keys.map((key) =>
          keyType === KEY_TYPE_TRANSACTION && key === ""
            ? failed(key, ErrorCode.INVALID_REQUEST, "The transactional id may not be empty")
            : locate(ctx.services, key, keyType)
        ),
        version,
      ),
    );
  },
  errorResponse: (req, code, version) =>
    toBody(keysOf(req, version).map((key) => failed(key, code)), version),
};
