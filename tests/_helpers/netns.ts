/**
 * Real network partitions between real node processes (DESIGN §13): every node runs in a
 * network namespace of its own, and all traffic goes through one "switch" namespace that
 * routes between them, where links are cut with policy-routing blackhole rules (the kernel
 * here has neither tc qdiscs nor netfilter). A blackholed packet is dropped in the middle
 * of the network, silently, as a real partition drops it: a connect() sits in SYN
 * retransmission, a write on an open connection sits in retransmission, and a cut in one
 * direction leaves the other direction delivering.
 *
 * ```
 *  root namespace (the test, its clients)            10.S.0.2  ── veth "<prefix>"
 *        │ route 10.S.0.0/16 via 10.S.0.1
 *  <prefix>-sw (switch: forwards; the cuts are `ip rule … blackhole` here)
 *        │ n1: 10.S.1.1       │ n2: 10.S.2.1       │ n3: 10.S.3.1
 *  <prefix>-n1 eth0           <prefix>-n2 eth0     <prefix>-n3 eth0
 *    Kafka 10.S.1.10            Kafka 10.S.2.10      Kafka 10.S.3.10
 *    Raft  10.S.1.20            Raft  10.S.2.20      Raft  10.S.3.20
 * ```
 *
 * A node's default route has its Kafka address as source, so Raft traffic is exactly what
 * is sent to or from a `.20` address, and Kafka traffic between nodes what goes from one
 * `.10` address to another: a Raft-only cut leaves the Kafka links (replica fetches,
 * heartbeats, clients) alone, and a Kafka-only cut the Raft links. The test process stays in the root namespace and
 * reaches every Kafka address, whatever is cut between the nodes.
 *
 * Names start with `tlpc<pid>` (the test process's pid); {@linkcode NetnsNetwork.create}
 * first removes what an earlier run whose process is gone left behind (killing the
 * processes still inside), and the network removes itself on dispose, or, if the test
 * process dies first (SIGINT, kill -9), a detached watchdog shell does it.
 */
import type { ClusterNetwork } from "./cluster.ts";
import { run } from "./run.ts";

const PREFIX = "tlpc";
/** Preference of our blackhole rules: before the main table (32766). */
const RULE_PREF = 100;

/** Runs `ip ARGS` (with `stdin` as a batch), resolving with its stdout; throws on failure. */
async function ip(args: string[], stdin?: string): Promise<string> {
  const out = await run(
    "ip",
    args,
    stdin === undefined ? { timeoutMs: 10_000 } : { stdin, timeoutMs: 10_000 },
  );
  return out.stdout.trim();
}

function ipSync(args: string[]): string {
  try {
    const out = new Deno.Command("ip", { args, stdout: "piped", stderr: "null" }).outputSync();
    return new TextDecoder().decode(out.stdout);
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Kills every process inside namespace `ns`, then deletes it (best effort, synchronous). */
function removeNamespace(ns: string): void {
  for (const pid of ipSync(["netns", "pids", ns]).split(/\s+/).filter(Boolean)) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch { /* gone already */ }
  }
  ipSync(["netns", "del", ns]);
}

function namespaces(): string[] {
  return ipSync(["netns", "list"]).split("\n").map((l) => l.split(" ")[0]!).filter(Boolean);
}

/** Names of the root namespace's links ("eth0", not "eth0@if2"). */
function links(): string[] {
  return ipSync(["-br", "link"]).split("\n").map((l) => l.split(/[\s@]/)[0]!).filter(Boolean);
}

/**
 * Why network namespaces cannot be used here, or null if they can: needs root and a
 * working `ip netns add` (tried with a throw-away namespace).
 */
export async function netnsUnavailable(): Promise<string | null> {
  if (Deno.build.os !== "linux") return `network namespaces need Linux, not ${Deno.build.os}`;
  if (Deno.uid() !== 0) return "network namespaces need root";
  const probe = `${PREFIX}${Deno.pid}-probe`;
  try {
    await ip(["netns", "add", probe]);
    await ip(["-n", probe, "link", "set", "lo", "up"]);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    ipSync(["netns", "del", probe]);
  }
}

/** What a cut between two nodes drops: everything, or only Raft or only Kafka traffic. */
export type CutScope = "all" | "raft" | "kafka";

/** The namespaces, addresses and cuts of one test run; see the module doc. */
export class NetnsNetwork implements ClusterNetwork, AsyncDisposable {
  readonly size: number;
  /** Every name of this run starts with it: `tlpc<pid>`. */
  readonly prefix: string;
  readonly switchNs: string;
  /** The second octet S of 10.S.0.0/16. */
  readonly octet: number;
  /** blackhole rules in force, as `ip rule` selectors. */
  readonly #rules = new Set<string>();
  #removed = false;
  #watchdog: Deno.ChildProcess | null = null;

  private constructor(size: number, octet: number) {
    this.size = size;
    this.prefix = `${PREFIX}${Deno.pid}`;
    this.switchNs = `${this.prefix}-sw`;
    this.octet = octet;
  }

  /** Namespace of node `id`. */
  ns(id: number): string {
    return `${this.prefix}-n${id}`;
  }

  kafkaHost(id: number): string {
    return `10.${this.octet}.${id}.10`;
  }

  raftHost(id: number): string {
    return `10.${this.octet}.${id}.20`;
  }

  command(id: number): string[] {
    return ["ip", "netns", "exec", this.ns(id)];
  }

  /**
   * Builds the switch and `size` node namespaces (ids 1..size), after removing leftovers
   * of runs whose process has exited. Throws if anything fails (and removes what it made).
   */
  static async create(size: number): Promise<NetnsNetwork> {
    const leftover = (name: string, pattern: RegExp) => {
      const m = pattern.exec(name);
      return m !== null && (Number(m[1]) === Deno.pid || !alive(Number(m[1])));
    };
    for (const ns of namespaces()) {
      if (leftover(ns, new RegExp(`^${PREFIX}(\\d+)-`))) removeNamespace(ns);
    }
    for (const link of links()) {
      if (leftover(link, new RegExp(`^${PREFIX}(\\d+)$`))) ipSync(["link", "del", link]);
    }
    // A /16 no route of the root namespace touches (runs of other processes included).
    const routes = await ip(["-4", "route", "show", "table", "all"]);
    const used = new Set([...routes.matchAll(/\b10\.(\d+)\./g)].map((m) => Number(m[1])));
    let octet = -1;
    for (let i = 0; i < 100 && octet < 0; i++) {
      const candidate = 100 + (Deno.pid + i) % 100;
      if (!used.has(candidate)) octet = candidate;
    }
    if (octet < 0) throw new Error("Cannot build the test network: no free 10.S.0.0/16 left");
    const net = new NetnsNetwork(size, octet);
    try {
      await net.#build();
    } catch (err) {
      net.removeSync();
      throw err;
    }
    net.#watchdog = net.#startWatchdog();
    return net;
  }

  async #build(): Promise<void> {
    const s = this.octet;
    const sw = this.switchNs;
    const uplink = this.prefix; // the root namespace's end of the switch's uplink
    await ip(["netns", "add", sw]);
    await ip(["-n", sw, "link", "set", "lo", "up"]);
    await ip(["netns", "exec", sw, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await ip(["link", "add", uplink, "type", "veth", "peer", "name", "up0", "netns", sw]);
    await ip(["addr", "add", `10.${s}.0.2/24`, "dev", uplink]);
    await ip(["link", "set", "dev", uplink, "up"]);
    await ip(["-n", sw, "addr", "add", `10.${s}.0.1/24`, "dev", "up0"]);
    await ip(["-n", sw, "link", "set", "dev", "up0", "up"]);
    await ip(["route", "add", `10.${s}.0.0/16`, "via", `10.${s}.0.1`, "dev", uplink]);
    for (let id = 1; id <= this.size; id++) {
      const ns = this.ns(id);
      await ip(["netns", "add", ns]);
      await ip(["-n", ns, "link", "set", "lo", "up"]);
      await ip([
        "-n",
        sw,
        "link",
        "add",
        `n${id}`,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns,
      ]);
      await ip(["-n", sw, "addr", "add", `10.${s}.${id}.1/24`, "dev", `n${id}`]);
      await ip(["-n", sw, "link", "set", "dev", `n${id}`, "up"]);
      await ip(["-n", ns, "addr", "add", `${this.kafkaHost(id)}/24`, "dev", "eth0"]);
      await ip(["-n", ns, "addr", "add", `${this.raftHost(id)}/24`, "dev", "eth0"]);
      await ip(["-n", ns, "link", "set", "dev", "eth0", "up"]);
      await ip([
        "-n",
        ns,
        "route",
        "add",
        "default",
        "via",
        `10.${s}.${id}.1`,
        "src",
        this.kafkaHost(id),
      ]);
    }
  }

  /** The selectors that drop `scope` traffic sent by node `from` to node `to`. */
  #selectors(from: number, to: number, scope: CutScope): string[] {
    const net = (id: number) => `10.${this.octet}.${id}.0/24`;
    switch (scope) {
      case "all":
        return [`from ${net(from)} to ${net(to)}`];
      case "raft":
        // What `from` sends to `to`'s Raft listener, and what `from`'s Raft listener
        // answers on connections `to` opened.
        return [
          `from ${net(from)} to ${this.raftHost(to)}/32`,
          `from ${this.raftHost(from)}/32 to ${net(to)}`,
        ];
      case "kafka":
        // Outbound connections come from the Kafka address: Kafka traffic is what goes
        // from one Kafka address to another (Raft traffic has a Raft address on one end).
        return [`from ${this.kafkaHost(from)}/32 to ${this.kafkaHost(to)}/32`];
    }
  }

  /**
   * Drops what node `from` sends to node `to` (one direction; `to` still reaches `from`).
   * `scope` "raft": only Raft traffic.
   */
  async block(from: number, to: number, scope: CutScope = "all"): Promise<void> {
    const add = this.#selectors(from, to, scope).filter((r) => !this.#rules.has(r));
    if (add.length === 0) return;
    await ip(
      ["-n", this.switchNs, "-batch", "-"],
      add.map((r) => `rule add ${r} blackhole pref ${RULE_PREF}\n`).join(""),
    );
    for (const r of add) this.#rules.add(r);
  }

  /** Cuts `a` from `b` both ways. */
  async cut(a: number, b: number, scope: CutScope = "all"): Promise<void> {
    await this.block(a, b, scope);
    await this.block(b, a, scope);
  }

  /** Cuts node `id` from every other node, both ways; clients still reach it. */
  async isolate(id: number, scope: CutScope = "all"): Promise<void> {
    for (let other = 1; other <= this.size; other++) {
      if (other !== id) await this.cut(id, other, scope);
    }
  }

  /** Removes every cut. */
  async heal(): Promise<void> {
    const rules = [...this.#rules];
    if (rules.length === 0) return;
    await ip(
      ["-n", this.switchNs, "-batch", "-"],
      rules.map((r) => `rule del ${r} blackhole pref ${RULE_PREF}\n`).join(""),
    );
    this.#rules.clear();
  }

  /** The cuts in force, for the report. */
  get cuts(): string[] {
    return [...this.#rules];
  }

  /**
   * A detached shell that removes this run's namespaces (and the nodes inside) once the
   * test process is gone, however it ended: `deno test` exits on SIGINT without running
   * the test's cleanup, and kill -9 runs none.
   */
  #startWatchdog(): Deno.ChildProcess {
    const script = `while kill -0 ${Deno.pid} 2>/dev/null; do sleep 1; done
for ns in $(ip netns list | awk '{print $1}' | grep '^${this.prefix}-'); do
  for pid in $(ip netns pids "$ns"); do kill -9 "$pid"; done
  ip netns del "$ns"
done
ip link del ${this.prefix} 2>/dev/null`;
    // setsid: out of the terminal's process group, so that Ctrl-C does not kill it too.
    const spawn = (cmd: string, args: string[]) =>
      new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" }).spawn();
    let child: Deno.ChildProcess;
    try {
      child = spawn("setsid", ["sh", "-c", script]);
    } catch {
      child = spawn("sh", ["-c", script]);
    }
    child.unref();
    return child;
  }

  /** Deletes every namespace of this run (killing what still runs inside). Idempotent. */
  removeSync(): void {
    if (this.#removed) return;
    this.#removed = true;
    try {
      this.#watchdog?.kill("SIGKILL");
    } catch { /* gone already */ }
    for (let id = 1; id <= this.size; id++) removeNamespace(this.ns(id));
    // Deleting a namespace frees its devices asynchronously: the uplink goes at once.
    ipSync(["link", "del", this.prefix]);
    removeNamespace(this.switchNs);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.removeSync();
    return Promise.resolve();
  }
}
