/**
 * The admin commands' Kafka client: connections to the bootstrap brokers and to the
 * brokers the cluster's Metadata names, routing to partition leaders and group
 * coordinators, deadlines on every request, and retries of the answers Kafka calls
 * retriable (a leader or coordinator moved, no controller yet). Everything goes over
 * the Kafka protocol; nothing here knows a node's internals.
 */
import { KafkaConnection } from "../client/mod.ts";
import {
  ApiKey,
  type DeepPartial,
  ErrorCode,
  errorName,
  type MetadataResponse,
  type MetadataResponseTopic,
  type RequestTypes,
  type ResponseTypes,
  ZERO_UUID,
} from "../protocol/mod.ts";
import { TidelogError } from "../util/errors.ts";
import { TimeoutError, withTimeout } from "../util/timeout.ts";
import type { BrokerAddr } from "./_args.ts";

type Key = keyof RequestTypes & keyof ResponseTypes;

/** A connect to an address behind a partition would otherwise wait out the kernel's SYN retries. */
const CONNECT_TIMEOUT_MS = 5000;
/** No admin request takes this long unless the broker is stuck. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** How long answers that mean "not yet" (no leader, coordinator loading) are retried. */
const RETRY_FOR_MS = 20_000;

/** A Kafka error code in an answer to one of the admin commands' requests. */
export class KafkaCallError extends TidelogError {
  /**
   * @param what the topic, partition or group it concerns ("t1-0"); empty: the command's
   * own subject
   */
  constructor(what: string, code: ErrorCode | number, detail?: string | null) {
    super(
      code as ErrorCode,
      `${what === "" ? "" : `${what}: `}${errorName(code)}${detail ? ` (${detail})` : ""}`,
    );
  }
}

/** None of the bootstrap brokers accepted a connection. */
export class BootstrapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BootstrapError";
  }
}

/** Codes that say "ask again (maybe elsewhere) soon", as Kafka's RetriableException does. */
const RETRIABLE_CODES: ReadonlySet<number> = new Set([
  ErrorCode.NOT_CONTROLLER,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.OFFSET_NOT_AVAILABLE,
  ErrorCode.BROKER_NOT_AVAILABLE,
]);

/** Whether `code` is one Kafka clients retry (after refreshing metadata). */
export function isRetriableCode(code: number): boolean {
  return RETRIABLE_CODES.has(code);
}

/**
 * Whether a failed call may succeed when tried again: a retriable Kafka code, or a
 * connection to a (non-bootstrap) broker that failed, as when a leader has just died.
 */
export function isRetriable(err: unknown): boolean {
  if (err instanceof KafkaCallError) return isRetriableCode(err.code);
  if (err instanceof BootstrapError || err instanceof TimeoutError) return false;
  return err instanceof Deno.errors.ConnectionRefused ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.BrokenPipe ||
    (err instanceof Error && err.message === "Connection closed");
}

/** A one-line reason for a failed connection or request. */
export function describeNetworkError(err: unknown): string {
  if (err instanceof TimeoutError) return `no answer within ${err.ms} ms`;
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (err instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (err instanceof Error) return err.message.split("\n")[0]!;
  return String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function addrKey(addr: BrokerAddr): string {
  return addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

/** One partition to look an offset up for. */
export interface OffsetQuery {
  topic: string;
  partition: number;
  /** -2 earliest, -1 latest, else a timestamp in ms. */
  timestamp: bigint;
}

/** An offset lookup's answer: the offset (-1: no record at or after the timestamp) or a code. */
export type OffsetAnswer = { offset: number; errorCode: 0 } | { offset: null; errorCode: number };

/** Key of a partition in maps. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** The admin commands' client; `close()` ends every connection it opened. */
export class AdminClient implements AsyncDisposable {
  readonly #bootstrap: readonly BrokerAddr[];
  readonly #clientId: string;
  /** Broker id → Kafka address, from the latest Metadata (and FindCoordinator answers). */
  readonly #brokers = new Map<number, BrokerAddr>();
  /** Open (or opening) connections by address. */
  readonly #conns = new Map<string, Promise<KafkaConnection>>();
  #closed = false;

  constructor(bootstrap: readonly BrokerAddr[], clientId = "tidelog-admin") {
    this.#bootstrap = bootstrap;
    this.#clientId = clientId;
  }

  /** The client id requests carry (what DescribeGroups shows for a consumer). */
  get clientId(): string {
    return this.#clientId;
  }

  #connect(addr: BrokerAddr): Promise<KafkaConnection> {
    const key = addrKey(addr);
    const existing = this.#conns.get(key);
    if (existing !== undefined) return existing;
    if (this.#closed) return Promise.reject(new Error("The admin client is closed"));
    const conn = KafkaConnection.connect(addr.host, addr.port, this.#clientId, {
      timeoutMs: CONNECT_TIMEOUT_MS,
    });
    this.#conns.set(key, conn);
    const forget = () => {
      if (this.#conns.get(key) === conn) this.#conns.delete(key);
    };
    conn.then((c) => c.closed.finally(forget), forget);
    return conn;
  }

  /** A connection to the first bootstrap broker that accepts one. */
  async any(): Promise<KafkaConnection> {
    const failures: string[] = [];
    for (const addr of this.#bootstrap) {
      try {
        return await this.#connect(addr);
      } catch (err) {
        failures.push(`${addrKey(addr)}: ${describeNetworkError(err)}`);
      }
    }
    throw new BootstrapError(`cannot connect to the cluster (${failures.join("; ")})`);
  }

  /** A connection to broker `id` (its address from the latest Metadata). */
  async broker(id: number): Promise<KafkaConnection> {
    let addr = this.#brokers.get(id);
    if (addr === undefined) {
      await this.metadata([]);
      addr = this.#brokers.get(id);
    }
    if (addr === undefined) {
      throw new KafkaCallError(`broker ${id}`, ErrorCode.BROKER_NOT_AVAILABLE, "not registered");
    }
    return await this.#connect(addr);
  }

  /** The brokers of the latest Metadata, by id. */
  get brokers(): ReadonlyMap<number, BrokerAddr> {
    return this.#brokers;
  }

  /**
   * Sends one request on `conn` and waits at most `timeoutMs` for the answer (then the
   * connection is closed, so nothing answers late on it).
   */
  request<K extends Key>(
    conn: KafkaConnection,
    apiKey: K,
    version: number,
    body: DeepPartial<RequestTypes[K]>,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<ResponseTypes[K]> {
    return withTimeout(conn.request(apiKey, version, body), timeoutMs, () => {
      conn.close().catch(() => {});
    });
  }

  /**
   * Metadata v12 from a bootstrap broker for `topics` (null: every topic; []: none, only
   * brokers and controller); remembers the brokers' addresses.
   */
  async metadata(
    topics: readonly string[] | null,
    options: { autoCreate?: boolean } = {},
  ): Promise<MetadataResponse> {
    const conn = await this.any();
    const md = await this.request(conn, ApiKey.Metadata, 12, {
      topics: topics === null ? null : topics.map((name) => ({ name, topicId: ZERO_UUID })),
      allowAutoTopicCreation: options.autoCreate ?? false,
      includeTopicAuthorizedOperations: false,
    });
    for (const b of md.brokers) this.#brokers.set(b.nodeId, { host: b.host, port: b.port });
    return md;
  }

  /**
   * One topic's Metadata (retried while retriable), or a {@linkcode KafkaCallError} with
   * its code, about `what` (default "topic NAME").
   */
  async topicMetadata(
    name: string,
    what = `topic ${name}`,
    options: { autoCreate?: boolean } = {},
  ): Promise<MetadataResponseTopic> {
    return await this.retrying(async () => {
      const md = await this.metadata([name], options);
      const t = md.topics.find((x) => x.name === name);
      if (t === undefined) throw new KafkaCallError(what, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      if (t.errorCode !== ErrorCode.NONE) throw new KafkaCallError(what, t.errorCode);
      return t;
    });
  }

  /**
   * The coordinator of `group` (FindCoordinator v4) and a connection to it. Throws
   * {@linkcode KafkaCallError} (retriable while the coordinator is not available).
   */
  async coordinator(group: string): Promise<{ nodeId: number; conn: KafkaConnection }> {
    const conn = await this.any();
    const res = await this.request(conn, ApiKey.FindCoordinator, 4, {
      keyType: 0,
      coordinatorKeys: [group],
    });
    const c = res.coordinators.find((x) => x.key === group) ?? res.coordinators[0];
    if (c === undefined) {
      throw new KafkaCallError(`group ${group}`, ErrorCode.COORDINATOR_NOT_AVAILABLE, "no answer");
    }
    if (c.errorCode !== ErrorCode.NONE) {
      throw new KafkaCallError(`group ${group}`, c.errorCode, c.errorMessage);
    }
    const addr = { host: c.host, port: c.port };
    this.#brokers.set(c.nodeId, addr);
    return { nodeId: c.nodeId, conn: await this.#connect(addr) };
  }

  /**
   * Runs `attempt` until it succeeds, fails with an error that is not retriable (see
   * {@linkcode isRetriable}), or `forMs` have passed; backs off 50 ms doubling to 500 ms.
   * `attempt` should look its routing (leader, coordinator) up afresh each time.
   */
  async retrying<T>(attempt: () => Promise<T>, forMs = RETRY_FOR_MS): Promise<T> {
    const deadline = Date.now() + forMs;
    let delay = 50;
    for (;;) {
      try {
        return await attempt();
      } catch (err) {
        if (!isRetriable(err) || Date.now() + delay > deadline) throw err;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 500);
    }
  }

  /**
   * ListOffsets v7 (isolation read_uncommitted) for each query, asked of each partition's
   * leader; retriable answers are asked again (after fresh Metadata) for up to `forMs`.
   * Returns one answer per query (by {@linkcode partitionKey}), errors included.
   */
  async listOffsets(
    queries: readonly OffsetQuery[],
    forMs = RETRY_FOR_MS,
  ): Promise<Map<string, OffsetAnswer>> {
    const answers = new Map<string, OffsetAnswer>();
    const deadline = Date.now() + forMs;
    let pending = [...queries];
    let delay = 50;
    while (pending.length > 0) {
      const topics = [...new Set(pending.map((q) => q.topic))];
      const md = await this.metadata(topics);
      const leaders = new Map<string, number>();
      for (const t of md.topics) {
        for (const p of t.partitions) {
          leaders.set(partitionKey(t.name ?? "", p.partitionIndex), p.leaderId);
        }
      }
      const byLeader = new Map<number, OffsetQuery[]>();
      const retry: OffsetQuery[] = [];
      const lastCode = new Map<string, number>();
      for (const q of pending) {
        const key = partitionKey(q.topic, q.partition);
        const leader = leaders.get(key);
        const topic = md.topics.find((t) => t.name === q.topic);
        if (leader === undefined) {
          const code = topic !== undefined && topic.errorCode !== ErrorCode.NONE
            ? topic.errorCode
            : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
          if (isRetriableCode(code)) {
            retry.push(q);
            lastCode.set(key, code);
          } else answers.set(key, { offset: null, errorCode: code });
          continue;
        }
        if (leader < 0) {
          retry.push(q);
          lastCode.set(key, ErrorCode.LEADER_NOT_AVAILABLE);
          continue;
        }
        const list = byLeader.get(leader) ?? [];
        list.push(q);
        byLeader.set(leader, list);
      }
      await Promise.all([...byLeader].map(async ([leader, qs]) => {
        let res;
        try {
          const conn = await this.broker(leader);
          res = await this.request(conn, ApiKey.ListOffsets, 7, {
            replicaId: -1,
            isolationLevel: 0,
            topics: [...new Set(qs.map((q) => q.topic))].map((topic) => ({
              name: topic,
              partitions: qs.filter((q) => q.topic === topic).map((q) => ({
                partitionIndex: q.partition,
                currentLeaderEpoch: -1,
                timestamp: q.timestamp,
              })),
            })),
            timeoutMs: REQUEST_TIMEOUT_MS,
          });
        } catch (err) {
          if (!isRetriable(err)) throw err;
          retry.push(...qs);
          for (const q of qs) {
            lastCode.set(partitionKey(q.topic, q.partition), ErrorCode.NETWORK_EXCEPTION);
          }
          return;
        }
        for (const q of qs) {
          const key = partitionKey(q.topic, q.partition);
          const p = res.topics.find((t) => t.name === q.topic)?.partitions.find((x) =>
            x.partitionIndex === q.partition
          );
          const code = p?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
          if (p !== undefined && code === ErrorCode.NONE) {
            answers.set(key, { offset: Number(p.offset), errorCode: 0 });
          } else if (isRetriableCode(code)) {
            retry.push(q);
            lastCode.set(key, code);
          } else {
            answers.set(key, { offset: null, errorCode: code });
          }
        }
      }));
      pending = retry;
      if (pending.length > 0 && Date.now() + delay > deadline) {
        for (const q of pending) {
          const key = partitionKey(q.topic, q.partition);
          answers.set(key, { offset: null, errorCode: lastCode.get(key) ?? -1 });
        }
        break;
      }
      if (pending.length > 0) {
        await sleep(delay);
        delay = Math.min(delay * 2, 500);
      }
    }
    return answers;
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const conns = [...this.#conns.values()];
    this.#conns.clear();
    await Promise.all(conns.map((p) => p.then((c) => c.close(), () => {})));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
