/**
 * `tidelog cluster status` (and its alias `tidelog status`): asks each node (by its Kafka
 * address) for its Raft view (DescribeQuorum v2) and the live brokers (Metadata v12),
 * and prints one line per node:
 *
 * ```
 * node 1  127.0.0.1:9092  up    leader    term 4  controller 1  broker unfenced  commit 17
 * node 2  127.0.0.1:9093  down  (connection refused)
 * ```
 *
 * The role is derived from the node's own DescribeQuorum answer: the leader it knows of
 * is itself (leader), another node (follower) or none (no-leader: an election is under
 * way). A node is "unfenced" when its own Metadata lists it among the brokers (Metadata
 * lists only unfenced brokers). Node ids come from the brokers' registered endpoints,
 * as reported by any node that answered.
 */
import { KafkaConnection } from "../client/mod.ts";
import { TimeoutError, withTimeout } from "../util/timeout.ts";
import {
  ApiKey,
  type DescribeQuorumResponse,
  errorName,
  type MetadataResponse,
} from "../protocol/mod.ts";
import type { BrokerAddr } from "./_args.ts";

/** How long one node gets to connect and answer both requests. */
const NODE_TIMEOUT_MS = 2000;

/** What one node said, or why it did not. */
type Probe =
  | { ok: true; quorum: DescribeQuorumResponse; metadata: MetadataResponse }
  | { ok: false; reason: string };

/** One node's line, as data (`--output json`; null: unknown or not applicable). */
export interface NodeStatus {
  nodeId: number | null;
  address: string;
  up: boolean;
  /** Why the node is down, or the error it answered. */
  error: string | null;
  /** leader | follower | no-leader | leader-is-N (the node's own id unknown). */
  role: string | null;
  term: number | null;
  controllerId: number | null;
  /** unfenced | fenced | unknown. */
  broker: string | null;
  commitIndex: number | null;
}

/** Connects to `addr` and asks both questions, giving up after `timeoutMs`. */
async function probe(addr: BrokerAddr, timeoutMs: number): Promise<Probe> {
  const connecting = KafkaConnection.connect(addr.host, addr.port, "tidelog-status");
  const opened: { conn?: KafkaConnection } = {};
  try {
    const [quorum, metadata] = await withTimeout(
      (async () => {
        const conn = opened.conn = await connecting;
        return await Promise.all([
          conn.request(ApiKey.DescribeQuorum, 2, {
            topics: [{ topicName: "__cluster_metadata", partitions: [{ partitionIndex: 0 }] }],
          }),
          conn.request(ApiKey.Metadata, 12, {
            topics: [],
            allowAutoTopicCreation: false,
            includeTopicAuthorizedOperations: false,
          }),
        ]);
      })(),
      timeoutMs,
    );
    return { ok: true, quorum, metadata };
  } catch (err) {
    return { ok: false, reason: describeFailure(err) };
  } finally {
    // A connect that lost the race is closed once it completes.
    if (opened.conn === undefined) connecting.then((c) => c.close(), () => {});
    else await opened.conn.close().catch(() => {});
  }
}

function describeFailure(err: unknown): string {
  if (err instanceof TimeoutError) return `no answer in ${err.ms} ms`;
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (err instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (err instanceof Error) return err.message.split("\n")[0]!;
  return String(err);
}

/** Every broker endpoint the answering nodes know (DescribeQuorum nodes, Metadata brokers). */
function endpointsOf(probes: Probe[]): { id: number; host: string; port: number }[] {
  const endpoints: { id: number; host: string; port: number }[] = [];
  for (const p of probes) {
    if (!p.ok) continue;
    for (const n of p.quorum.nodes) {
      for (const l of n.listeners) endpoints.push({ id: n.nodeId, host: l.host, port: l.port });
    }
    for (const b of p.metadata.brokers) {
      endpoints.push({ id: b.nodeId, host: b.host, port: b.port });
    }
  }
  return endpoints;
}

/** Node id listening on `addr`, from the brokers' registered endpoints. */
function nodeIdOf(addr: BrokerAddr, probes: Probe[]): number | undefined {
  const endpoints = endpointsOf(probes);
  const exact = endpoints.find((e) => e.host === addr.host && e.port === addr.port);
  if (exact) return exact.id;
  // "localhost:9092" asked, "127.0.0.1:9092" advertised: match on the port if unambiguous.
  const ids = new Set(endpoints.filter((e) => e.port === addr.port).map((e) => e.id));
  return ids.size === 1 ? [...ids][0] : undefined;
}

function addrText(addr: BrokerAddr): string {
  return `${addr.host}:${addr.port}`;
}

function statusOf(addr: BrokerAddr, id: number | undefined, p: Probe): NodeStatus {
  const base: NodeStatus = {
    nodeId: id ?? null,
    address: addrText(addr),
    up: p.ok,
    error: null,
    role: null,
    term: null,
    controllerId: null,
    broker: null,
    commitIndex: null,
  };
  if (!p.ok) return { ...base, error: p.reason };
  if (p.quorum.errorCode !== 0) return { ...base, error: errorName(p.quorum.errorCode) };
  const part = p.quorum.topics[0]?.partitions[0];
  if (part === undefined) return { ...base, error: "no quorum partition" };
  if (part.errorCode !== 0) return { ...base, error: errorName(part.errorCode) };
  const role = part.leaderId === -1
    ? "no-leader"
    : id === undefined
    ? `leader-is-${part.leaderId}`
    : part.leaderId === id
    ? "leader"
    : "follower";
  return {
    ...base,
    role,
    term: part.leaderEpoch,
    controllerId: p.metadata.controllerId >= 0 ? p.metadata.controllerId : null,
    broker: id === undefined
      ? "unknown"
      : p.metadata.brokers.some((b) => b.nodeId === id)
      ? "unfenced"
      : "fenced",
    commitIndex: Number(part.highWatermark),
  };
}

/** The columns of one node's line. */
function columnsOf(s: NodeStatus): string[] {
  const name = [`node ${s.nodeId ?? "?"}`, s.address];
  if (!s.up) return [...name, "down", `(${s.error})`];
  if (s.error !== null) {
    return [...name, "up", s.error.includes(" ") ? `error (${s.error})` : `error ${s.error}`];
  }
  return [
    ...name,
    "up",
    s.role ?? "",
    `term ${s.term}`,
    `controller ${s.controllerId ?? "none"}`,
    `broker ${s.broker}`,
    `commit ${s.commitIndex}`,
  ];
}

/** Pads every column but the last to its widest value, two spaces apart. */
function formatLines(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    // The last cell is not padded, so it does not widen its column.
    row.slice(0, -1).forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)).join("  ")
  );
}

/**
 * The status of each node at `addrs` (in that order). With `discover`, nodes the
 * answering ones know of (registered brokers) are probed too and added, by node id.
 */
export async function probeCluster(
  addrs: readonly BrokerAddr[],
  options: { discover?: boolean; timeoutMs?: number } = {},
): Promise<NodeStatus[]> {
  const timeoutMs = options.timeoutMs ?? NODE_TIMEOUT_MS;
  const asked = [...addrs];
  const probes = await Promise.all(asked.map((a) => probe(a, timeoutMs)));
  if (options.discover) {
    const known = new Set(asked.map(addrText));
    const knownIds = new Set(asked.map((a) => nodeIdOf(a, probes)).filter((x) => x !== undefined));
    const more: BrokerAddr[] = [];
    for (const e of endpointsOf(probes)) {
      const addr = { host: e.host, port: e.port };
      if (known.has(addrText(addr)) || knownIds.has(e.id)) continue;
      known.add(addrText(addr));
      knownIds.add(e.id);
      more.push(addr);
    }
    asked.push(...more);
    probes.push(...await Promise.all(more.map((a) => probe(a, timeoutMs))));
  }
  const statuses = asked.map((addr, i) => statusOf(addr, nodeIdOf(addr, probes), probes[i]!));
  if (options.discover) {
    statuses.sort((a, b) => (a.nodeId ?? Infinity) - (b.nodeId ?? Infinity));
  }
  return statuses;
}

/** The status lines of `statuses`, aligned. */
export function formatStatusLines(statuses: readonly NodeStatus[]): string[] {
  return formatLines(statuses.map(columnsOf));
}

function writeLine(line: string): void {
  const bytes = new TextEncoder().encode(line + "\n");
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/**
 * Prints one line per address in `options.addrs` (in that order) and returns the exit
 * code: 0 if at least one node answered, 1 if none did. `write` replaces stdout (tests).
 */
export async function runStatus(
  options: { addrs: BrokerAddr[] },
  io: { write?: (line: string) => void; timeoutMs?: number } = {},
): Promise<number> {
  const write = io.write ?? writeLine;
  const statuses = await probeCluster(options.addrs, { timeoutMs: io.timeoutMs });
  for (const line of formatStatusLines(statuses)) write(line);
  return statuses.some((s) => s.up) ? 0 : 1;
}
