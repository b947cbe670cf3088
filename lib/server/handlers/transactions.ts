/**
 * The transaction coordinator's APIs (KIP-98), answered by the coordinator of the
 * transactional id (the leader of its `__transaction_state` partition; elsewhere
 * NOT_COORDINATOR, and COORDINATOR_LOAD_IN_PROGRESS while the partition loads):
 *
 * - AddPartitionsToTxn (key 24): v0-3 from clients; v4 batches transactions, as brokers send
 *   it, and with `verifyOnly` (KIP-890 part 1) only checks that the partitions are in the
 *   open transaction (the partition leaders here ask before a transaction's first batch).
 *   Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and the others
 *   OPERATION_NOT_ATTEMPTED, as Kafka. v5 (transaction version 2) is not served.
 * - AddOffsetsToTxn (key 25): v0-4; adds the group's `__consumer_offsets` partition.
 * - EndTxn (key 26): v0-4 (v5 belongs to transaction version 2, which is not advertised).
 * - DescribeTransactions (key 65): v0; ids coordinated elsewhere get NOT_COORDINATOR, unknown
 *   ones TRANSACTIONAL_ID_NOT_FOUND.
 * - ListTransactions (key 66): v0-1; the ids this node coordinates, filtered by state,
 *   producer id and (v1) minimum running time; unknown state names are listed back.
 *
 * An older producer epoch gets PRODUCER_FENCED from v2 on (KIP-588), INVALID_PRODUCER_EPOCH
 * before; an id with another producer id INVALID_PRODUCER_ID_MAPPING.
 */
import { groupPartition, OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS } from "../../group/mod.ts";
import {
  type AddOffsetsToTxnRequest,
  type AddPartitionsToTxnRequest,
  ApiKey,
  type DescribeTransactionsRequest,
  type EndTxnRequest,
  ErrorCode,
  type ListTransactionsRequest,
} from "../../protocol/mod.ts";
import { TXN_STATES, type TxnPartition, type TxnReply, type TxnView } from "../../txn/mod.ts";
import { type ApiHandler, type RequestContext, respond } from "../handler.ts";

/** The code for an older producer epoch at this API version (KIP-588). */
function fencedCode(version: number, firstVersionWithFenced: number): ErrorCode {
  return version >= firstVersionWithFenced
    ? ErrorCode.PRODUCER_FENCED
    : ErrorCode.INVALID_PRODUCER_EPOCH;
}

/**
 * Runs `call` if this node coordinates `transactionalId`, else answers its coordinator
 * error. The empty id is INVALID_REQUEST.
 */
async function txnCall(
  ctx: RequestContext,
  transactionalId: string,
  call: () => Promise<TxnReply>,
): Promise<TxnReply> {
  if (transactionalId === "") return { code: ErrorCode.INVALID_REQUEST };
  const code = ctx.services.txn.coordinatorError(transactionalId);
  if (code !== ErrorCode.NONE) return { code };
  const reply = await call();
  if (reply.code !== ErrorCode.NONE) {
    ctx.log.debug("Transaction call for {transactionalId} answered {code}", {
      transactionalId,
      code: reply.code,
    });
  }
  return reply;
}

type TopicResult = {
  name: string;
  resultsByPartition: { partitionIndex: number; partitionErrorCode: number }[];
};

function topicResults(
  topics: AddPartitionsToTxnRequest["v3AndBelowTopics"],
  code: (topic: string, partition: number) => number,
): TopicResult[] {
  return topics.map((t) => ({
    name: t.name,
    resultsByPartition: t.partitions.map((p) => ({
      partitionIndex: p,
      partitionErrorCode: code(t.name, p),
    })),
  }));
}

/** One transaction's partitions added (or, `verifyOnly`, checked): a result per partition. */
async function addOrVerify(
  ctx: RequestContext,
  txn: {
    transactionalId: string;
    producerId: bigint;
    producerEpoch: number;
    verifyOnly: boolean;
    topics: AddPartitionsToTxnRequest["v3AndBelowTopics"];
  },
  fenced: ErrorCode,
): Promise<TopicResult[]> {
  const image = ctx.services.metadata.image;
  const exists = (topic: string, partition: number) => {
    const t = image.topic(topic);
    return t !== undefined && partition >= 0 && partition < t.partitions.length;
  };
  const topics = txn.topics;
  if (topics.some((t) => t.partitions.some((p) => !exists(t.name, p)))) {
    return topicResults(
      topics,
      (t, p) =>
        exists(t, p) ? ErrorCode.OPERATION_NOT_ATTEMPTED : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
  }
  const partitions: TxnPartition[] = topics.flatMap((t) =>
    t.partitions.map((partition) => ({ topic: t.name, partition }))
  );
  if (txn.verifyOnly) {
    const codes = ctx.services.txn.verify(txn, partitions);
    let i = 0;
    return topicResults(topics, () => typeof codes === "number" ? codes : codes[i++]!);
  }
  const r = await txnCall(
    ctx,
    txn.transactionalId,
    () => ctx.services.txn.addPartitions(txn, partitions, fenced),
  );
  return topicResults(topics, () => r.code);
}

export const addPartitionsToTxnHandler: ApiHandler<typeof ApiKey.AddPartitionsToTxn> = {
  apiKey: ApiKey.AddPartitionsToTxn,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, req: AddPartitionsToTxnRequest) {
    const version = ctx.header.apiVersion;
    if (version >= 4) {
      return respond(
        Promise.all(req.transactions.map(async (t) => ({
          transactionalId: t.transactionalId,
          topicResults: await addOrVerify(ctx, t, ErrorCode.PRODUCER_FENCED),
        }))).then((resultsByTransaction) => ({
          throttleTimeMs: 0,
          errorCode: ErrorCode.NONE,
          resultsByTransaction,
        })),
      );
    }
    return respond(
      addOrVerify(ctx, {
        transactionalId: req.v3AndBelowTransactionalId,
        producerId: req.v3AndBelowProducerId,
        producerEpoch: req.v3AndBelowProducerEpoch,
        verifyOnly: false,
        topics: req.v3AndBelowTopics,
      }, fencedCode(version, 2)).then((resultsByTopicV3AndBelow) => ({
        throttleTimeMs: 0,
        resultsByTopicV3AndBelow,
      })),
    );
  },
  errorResponse: (req, code) => ({
    throttleTimeMs: 0,
    errorCode: code,
    resultsByTransaction: [],
    resultsByTopicV3AndBelow: topicResults(req.v3AndBelowTopics, () => code),
  }),
};

export const addOffsetsToTxnHandler: ApiHandler<typeof ApiKey.AddOffsetsToTxn> = {
  apiKey: ApiKey.AddOffsetsToTxn,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, req: AddOffsetsToTxnRequest) {
    const version = ctx.header.apiVersion;
    const partition = {
      topic: OFFSETS_TOPIC,
      partition: groupPartition(req.groupId, OFFSETS_TOPIC_PARTITIONS),
    };
    return respond(
      txnCall(
        ctx,
        req.transactionalId,
        () => ctx.services.txn.addPartitions(req, [partition], fencedCode(version, 2)),
      ).then((r) => ({ throttleTimeMs: 0, errorCode: r.code })),
    );
  },
  errorResponse: (_req, code) => ({ throttleTimeMs: 0, errorCode: code }),
};

export const endTxnHandler: ApiHandler<typeof ApiKey.EndTxn> = {
  apiKey: ApiKey.EndTxn,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, req: EndTxnRequest) {
    const version = ctx.header.apiVersion;
    return respond(
      txnCall(
        ctx,
        req.transactionalId,
        () => ctx.services.txn.endTxn(req, req.committed, fencedCode(version, 2)),
      ).then((r) => ({ throttleTimeMs: 0, errorCode: r.code })),
    );
  },
  errorResponse: (_req, code) => ({ throttleTimeMs: 0, errorCode: code }),
};

/** A transaction's topics, as DescribeTransactions lists them. */
function topicsOf(v: TxnView): { topic: string; partitions: number[] }[] {
  const byTopic = new Map<string, number[]>();
  for (const p of v.partitions) {
    byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

/** The DescribeTransactions entry of an id that cannot be described (`errorCode`). */
function undescribed(transactionalId: string, errorCode: number) {
  return {
    errorCode,
    transactionalId,
    transactionState: "",
    transactionTimeoutMs: 0,
    transactionStartTimeMs: -1n,
    producerId: -1n,
    producerEpoch: -1,
    topics: [],
  };
}

export const describeTransactionsHandler: ApiHandler<typeof ApiKey.DescribeTransactions> = {
  apiKey: ApiKey.DescribeTransactions,
  minVersion: 0,
  maxVersion: 0,
  handle(ctx, req: DescribeTransactionsRequest) {
    const { txn } = ctx.services;
    return respond({
      throttleTimeMs: 0,
      transactionStates: req.transactionalIds.map((id) => {
        const code = txn.coordinatorError(id);
        if (code !== ErrorCode.NONE) return undescribed(id, code);
        const v = txn.describe(id);
        if (v === undefined) return undescribed(id, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND);
        return {
          errorCode: ErrorCode.NONE,
          transactionalId: id,
          transactionState: v.state,
          transactionTimeoutMs: v.txnTimeoutMs,
          transactionStartTimeMs: BigInt(v.txnStartTimestampMs),
          producerId: v.producerId,
          producerEpoch: v.producerEpoch,
          topics: topicsOf(v),
        };
      }),
    });
  },
  errorResponse: (req, code) => ({
    throttleTimeMs: 0,
    transactionStates: req.transactionalIds.map((id) => undescribed(id, code)),
  }),
};

export const listTransactionsHandler: ApiHandler<typeof ApiKey.ListTransactions> = {
  apiKey: ApiKey.ListTransactions,
  minVersion: 0,
  maxVersion: 1,
  handle(ctx, req: ListTransactionsRequest) {
    const known = new Set<string>(TXN_STATES);
    const states = new Set(req.stateFilters.filter((s) => known.has(s)));
    const unknownStateFilters = req.stateFilters.filter((s) => !known.has(s));
    const producerIds = new Set(req.producerIdFilters);
    const version = ctx.header.apiVersion;
    const minDuration = version >= 1 ? Number(req.durationFilter) : -1;
    const now = ctx.services.clock.nowMs();
    const transactionStates = ctx.services.txn.list()
      .filter((v) => states.size === 0 || states.has(v.state))
      .filter((v) => producerIds.size === 0 || producerIds.has(v.producerId))
      .filter((v) =>
        minDuration < 0 ||
        (v.state === "Ongoing" && v.txnStartTimestampMs >= 0 &&
          now - v.txnStartTimestampMs >= minDuration)
      )
      .map((v) => ({
        transactionalId: v.transactionalId,
        producerId: v.producerId,
        transactionState: v.state,
      }));
    return respond({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      unknownStateFilters,
      transactionStates,
    });
  },
  errorResponse: (_req, code) => ({
    throttleTimeMs: 0,
    errorCode: code,
    unknownStateFilters: [],
    transactionStates: [],
  }),
};
