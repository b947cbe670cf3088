/**
 * Test helper: spawns `_raft_process.ts` nodes and talks to them over stdin/stdout
 * (shared by the real-process tests and the benchmark).
 */
const ENTRY = new URL("./_raft_process.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

/** Ports that were free a moment ago (listen on port 0, then release). */
export function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => l.addr.port);
  for (const l of listeners) l.close();
  return ports;
}

export interface ProcStatus {
  id: number;
  role: string;
  term: number;
  leader: number | null;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshotIndex: number;
  match: Record<number, number>;
}

/** One Raft node process. */
export class RaftProcess {
  readonly id: number;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #nextReq = 1;
  #waiting = new Map<number, (v: Record<string, unknown>) => void>();
  readonly #reading: Promise<void>;
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(
    id: number,
    peers: string,
    dataDir: string,
    options: { snapshotEvery?: number; tickMs?: number } = {},
  ) {
    this.id = id;
    const args = [
      "run",
      "-A",
      ENTRY,
      "--id",
      String(id),
      "--peers",
      peers,
      "--data",
      dataDir,
      "--snapshot-every",
      String(options.snapshotEvery ?? 10000),
      "--tick-ms",
      String(options.tickMs ?? 100),
    ];
    const verbose = Deno.env.get("RAFT_PROC_LOG") !== undefined;
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: verbose ? "inherit" : "null",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reading = this.#readLoop();
    this.status = this.#child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  async #readLoop(): Promise<void> {
    let buf = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as Record<string, unknown>;
        const w = this.#waiting.get(msg.id as number);
        this.#waiting.delete(msg.id as number);
        w?.(msg);
      }
    }
    for (const w of this.#waiting.values()) w({ ok: false, error: "ProcessExited" });
    this.#waiting.clear();
  }

  /** Sends a command; resolves with the reply (or `{ok:false}` if the process died). */
  async request(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.#exited) return { ok: false, error: "ProcessExited" };
    const id = this.#nextReq++;
    const reply = new Promise<Record<string, unknown>>((resolve) => this.#waiting.set(id, resolve));
    try {
      await this.#writer.write(encoder.encode(JSON.stringify({ ...req, id }) + "\n"));
    } catch {
      this.#waiting.delete(id);
      return { ok: false, error: "ProcessExited" };
    }
    return await reply;
  }

  async getStatus(): Promise<ProcStatus | undefined> {
    const r = await this.request({ op: "status" });
    return r.ok === true ? r.status as ProcStatus : undefined;
  }

  async values(): Promise<string[] | undefined> {
    const r = await this.request({ op: "values" });
    return r.ok === true ? r.values as string[] : undefined;
  }

  /** SIGKILL, then wait for the exit and the pipes to drain. */
  async kill(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await this.status;
    await this.#reading;
    try {
      await this.#writer.close();
    } catch {
      // The pipe is broken once the process died.
    }
  }
}

/** Polls `fn` every `everyMs` until it returns a value other than undefined. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The id of the leader that a majority of `procs` agrees on, if any. */
export async function findLeader(procs: RaftProcess[]): Promise<number | undefined> {
  const live = procs.filter((p) => !p.exited);
  const statuses = await Promise.all(live.map((p) => p.getStatus()));
  for (const s of statuses) {
    if (s?.role !== "leader") continue;
    const agree = statuses.filter((o) => o?.leader === s.id && o.term === s.term).length;
    if (agree >= 2) return s.id;
  }
  return undefined;
}
