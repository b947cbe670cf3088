/**
 * A Raft node in its own process, for the real-process tests and the benchmark: runs a
 * {@linkcode RaftDriver} with a trivial state machine (the list of applied values) and
 * answers JSON-line commands on stdin with JSON lines on stdout:
 *
 * - `{"id":1,"op":"status"}` → `{"id":1,"ok":true,"status":{…}}`
 * - `{"id":2,"op":"propose","data":"x"}` → `{"id":2,"ok":true,"index":…}` or
 *   `{"id":2,"ok":false,"error":"NotLeaderError","leader":3}`
 * - `{"id":3,"op":"values"}` → the applied values in order
 * - `{"id":4,"op":"bench","count":1000,"inflight":64,"size":100}` → proposes `count`
 *   entries of `size` bytes with `inflight` outstanding and returns latencies (ms).
 * - `{"id":5,"op":"close"}` closes the driver and exits 0.
 *
 * Flags: `--id N --peers 1@host:port,2@host:port,... --data DIR [--snapshot-every N]
 * [--tick-ms MS] [--log-level LEVEL]`.
 */
import { RaftDriver, type StateMachine } from "../../lib/raft/mod.ts";
import { configureLogging, type LogLevel } from "../../lib/util/log.ts";

function flag(name: string, fallback?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Deno.args[i + 1] : fallback;
  if (v === undefined) {
    Deno.stderr.writeSync(new TextEncoder().encode(`missing --${name}\n`));
    Deno.exit(2);
  }
  return v;
}

const id = Number(flag("id"));
const voters = new Map<number, string>();
for (const part of flag("peers").split(",")) {
  const [pid, addr] = part.split("@");
  voters.set(Number(pid), addr!);
}
await configureLogging(flag("log-level", "warning") as LogLevel);

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const values: string[] = [];
const sm: StateMachine = {
  apply(e) {
    values.push(decoder.decode(e.data));
  },
  snapshot() {
    return encoder.encode(JSON.stringify(values));
  },
  restore(data) {
    values.length = 0;
    values.push(...(JSON.parse(decoder.decode(data)) as string[]));
  },
};

const driver = await RaftDriver.start({
  nodeId: id,
  voters,
  dataDir: flag("data"),
  stateMachine: sm,
  tickMs: Number(flag("tick-ms", "100")),
  snapshotEvery: Number(flag("snapshot-every", "10000")),
});

function reply(obj: unknown): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(obj) + "\n"));
}

function errorReply(reqId: number, err: unknown): void {
  const e = err as Error & { leaderId?: number };
  reply({ id: reqId, ok: false, error: e.name, message: e.message, leader: e.leaderId ?? null });
}

async function bench(reqId: number, count: number, inflight: number, size: number) {
  const payload = "x".repeat(Math.max(0, size - 12));
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  async function worker() {
    while (next < count) {
      const n = next++;
      const start = performance.now();
      try {
        await driver.propose(encoder.encode(`${String(n).padStart(11, "0")}:${payload}`));
        latencies.push(performance.now() - start);
      } catch {
        failed++;
      }
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker));
  reply({ id: reqId, ok: true, elapsedMs: performance.now() - t0, latencies, failed });
}

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buf = "";
for await (const chunk of lines) {
  buf += chunk;
  let nl: number;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (line.trim() === "") continue;
    const req = JSON.parse(line) as {
      id: number;
      op: string;
      data?: string;
      count?: number;
      inflight?: number;
      size?: number;
    };
    switch (req.op) {
      case "status":
        reply({ id: req.id, ok: true, status: driver.status() });
        break;
      case "values":
        reply({ id: req.id, ok: true, values });
        break;
      case "propose":
        driver.propose(encoder.encode(req.data ?? "")).then(
          (r) => reply({ id: req.id, ok: true, index: r.index, term: r.term }),
          (err) => errorReply(req.id, err),
        );
        break;
      case "bench":
        bench(req.id, req.count ?? 1000, req.inflight ?? 1, req.size ?? 100).catch((err) =>
          errorReply(req.id, err)
        );
        break;
      case "close":
        await driver.close();
        reply({ id: req.id, ok: true });
        Deno.exit(0);
        break;
      default:
        reply({ id: req.id, ok: false, error: "UnknownOp" });
    }
  }
}
await driver.close();
