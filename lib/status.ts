/**
 * `tidelog status`: asks each node (by its Kafka address) for its Raft view
 * (DescribeQuorum v2) and the live brokers (Metadata v12), and prints one line per node:
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
import type { StatusOptions } from "./cli.ts";
import { KafkaConnection } from "./client/mod.ts";
import { TimeoutError, withTimeout } from "./util/timeout.ts";
import {
  ApiKey,
  type DescribeQuorumResponse,
  errorName,
  type MetadataResponse,
} from "./protocol/mod.ts";

/** How long one node gets to connect and answer both requests. */
const NODE_TIMEOUT_MS = 2000;

type Addr = StatusOptions["addrs"][number];

/** What one node said, or why it did not. */
type Probe =
  | { ok: true; quorum: DescribeQuorumResponse; metadata: MetadataResponse }
  | { ok: false; reason: string };

/** Connects to `addr` and asks both questions, giving up after `timeoutMs`. */
async function probe(addr: Addr, timeoutMs: number): Promise<Probe> {
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

/** Node id listening on `addr`, from the brokers' registered endpoints. */
function nodeIdOf(addr: Addr, probes: Probe[]): number | undefined {
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
  const exact = endpoints.find((e) => e.host === addr.host && e.port === addr.port);
  if (exact) return exact.id;
  // "localhost:9092" asked, "127.0.0.1:9092" advertised: match on the port if unambiguous.
  const ids = new Set(endpoints.filter((e) => e.port === addr.port).map((e) => e.id));
  return ids.size === 1 ? [...ids][0] : undefined;
}

/** The columns of one node's line. */
function describeNode(addr: Addr, id: number | undefined, p: Probe): string[] {
  const name = [`node ${id ?? "?"}`, `${addr.host}:${addr.port}`];
  if (!p.ok) return [...name, "down", `(${p.reason})`];
  if (p.quorum.errorCode !== 0) return [...name, "up", `error ${errorName(p.quorum.errorCode)}`];
  const part = p.quorum.topics[0]?.partitions[0];
  if (part === undefined) return [...name, "up", "error (no quorum partition)"];
  if (part.errorCode !== 0) return [...name, "up", `error ${errorName(part.errorCode)}`];
  const role = part.leaderId === -1
    ? "no-leader"
    : id === undefined
    ? `leader-is-${part.leaderId}`
    : part.leaderId === id
    ? "leader"
    : "follower";
  const controller = p.metadata.controllerId >= 0 ? String(p.metadata.controllerId) : "none";
  const broker = id === undefined
    ? "unknown"
    : p.metadata.brokers.some((b) => b.nodeId === id)
    ? "unfenced"
    : "fenced";
  return [
    ...name,
    "up",
    role,
    `term ${part.leaderEpoch}`,
    `controller ${controller}`,
    `broker ${broker}`,
    `commit ${part.highWatermark}`,
  ];
}

/** Pads every column but the last to its widest value, two spaces apart. */
function formatTable(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    // The last cell is not padded, so it does not widen its column.
    row.slice(0, -1).forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)).join("  ")
  );
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
  options: StatusOptions,
  io: { write?: (line: string) => void; timeoutMs?: number } = {},
): Promise<number> {
  const write = io.write ?? writeLine;
  const timeoutMs = io.timeoutMs ?? NODE_TIMEOUT_MS;
  const probes = await Promise.all(options.addrs.map((a) => probe(a, timeoutMs)));
  const rows = options.addrs.map((addr, i) =>
    describeNode(addr, nodeIdOf(addr, probes), probes[i]!)
  );
  for (const line of formatTable(rows)) write(line);
  return probes.some((p) => p.ok) ? 0 : 1;
}
