/**
 * Runs a real Tidelog node as a child process (`deno run main.ts serve`) on 127.0.0.1
 * (or another address, possibly inside a network namespace) with its own data directory,
 * for integration and crash tests.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** A free TCP port on 127.0.0.1 (bound once and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Resolves once something accepts TCP connections on `hostname:port`, or rejects after
 * `timeoutMs`.
 */
export async function waitForPort(
  port: number,
  timeoutMs = 30_000,
  hostname = "127.0.0.1",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const c = await Deno.connect({ hostname, port });
      c.close();
      return;
    } catch {
      if (Date.now() > deadline) {
        throw new Error(`Nothing listens on ${hostname}:${port} after ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A running node process. */
export class NodeProcess {
  readonly port: number;
  readonly dataDir: string;
  readonly bootstrap: string;
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<string>;
  #exited: Promise<Deno.CommandStatus>;

  private constructor(child: Deno.ChildProcess, host: string, port: number, dataDir: string) {
    this.#child = child;
    this.port = port;
    this.dataDir = dataDir;
    this.bootstrap = `${host}:${port}`;
    this.#exited = child.status;
    this.#output = new Response(child.stderr).text();
  }

  /**
   * Starts a node; resolves once it accepts connections. `args` are extra flags; `host`
   * is the Kafka listen address (default 127.0.0.1; it must be reachable from here), and
   * `command` a prefix the node runs under (such as `["ip", "netns", "exec", NS]`; it must
   * exec the node, so that signals reach it). The same `dataDir` and `port` restart a node
   * on its old data.
   */
  static async start(
    options: {
      dataDir: string;
      port?: number;
      host?: string;
      args?: string[];
      nodeId?: number;
      command?: string[];
    },
  ): Promise<NodeProcess> {
    const port = options.port ?? freePort();
    const host = options.host ?? "127.0.0.1";
    const [program, ...prefix] = [...(options.command ?? []), Deno.execPath()];
    const child = new Deno.Command(program!, {
      args: [
        ...prefix,
        "run",
        "--allow-all",
        MAIN,
        "serve",
        "--node-id",
        String(options.nodeId ?? 1),
        "--kafka-addr",
        `${host}:${port}`,
        "--data-dir",
        options.dataDir,
        // Tests run many nodes at once: no HTTP listener unless a test asks for one.
        ...(options.args?.includes("--http-addr") ? [] : ["--http-addr", "none"]),
        ...(options.args ?? []),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const node = new NodeProcess(child, host, port, options.dataDir);
    const started = waitForPort(port, 30_000, host);
    const died = node.#exited.then((s) => {
      throw new Error(`Node exited with ${s.code} during start-up`);
    });
    try {
      await Promise.race([started, died]);
    } catch (err) {
      await node.kill("SIGKILL");
      throw new Error(`${(err as Error).message}\n${await node.output()}`);
    }
    return node;
  }

  /** The operating-system process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Sends `signal` without waiting (SIGSTOP, SIGCONT). */
  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Sends `signal` and waits for the process to exit. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
    return await this.#exited;
  }

  /** Graceful stop (SIGTERM); returns the exit status. */
  stop(): Promise<Deno.CommandStatus> {
    return this.kill("SIGTERM");
  }

  /** Everything the node wrote to stderr (its log), once it has exited. */
  output(): Promise<string> {
    return this.#output;
  }
}

/** A temporary directory removed by `[Symbol.asyncDispose]`. */
export async function tempDir(
  prefix = "tidelog-test-",
): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** A data directory path inside `dir` for node `n`. */
export function nodeDir(dir: string, n = 1): string {
  return join(dir, `node-${n}`);
}
