/**
 * Takes a V8 CPU profile of a running Deno process started with `--inspect=HOST:PORT`
 * (through the inspector's DevTools protocol) and prints where the time went: self time
 * per function and the total time of the heaviest call paths' frames.
 *
 * Run: deno run -A tests/bench/tools/cpu_profile.ts [--inspect 127.0.0.1:9229]
 *      [--seconds 5] [--out profile.cpuprofile] [--top 40] [--interval-us 200]
 * or summarise a saved profile: ... --in profile.cpuprofile
 * A process started with `--inspect-wait` is let go once the profiler runs (start-up).
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    inspect: { type: "string", default: "127.0.0.1:9229" },
    seconds: { type: "string", default: "5" },
    out: { type: "string" },
    in: { type: "string" },
    top: { type: "string", default: "40" },
    "interval-us": { type: "string", default: "200" },
  },
});

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

async function capture(): Promise<Profile> {
  const targets = await (await fetch(`http://${values.inspect}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let nextId = 1;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data as string) as { id?: number; result?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result);
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: Number(values["interval-us"]) });
  await call("Profiler.start");
  await call("Runtime.runIfWaitingForDebugger");
  await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
  const { profile } = await call("Profiler.stop") as { profile: Profile };
  ws.close();
  return profile;
}

const profile: Profile = values.in
  ? JSON.parse(await Deno.readTextFile(values.in))
  : await capture();
if (values.out) await Deno.writeTextFile(values.out, JSON.stringify(profile));

const total = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const name = (n: ProfileNode) => {
  const f = n.callFrame;
  const file = f.url.replace(/^.*\/(lib|tests|ext)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
};
const self = new Map<string, number>();
for (const n of profile.nodes) self.set(name(n), (self.get(name(n)) ?? 0) + (n.hitCount ?? 0));
// Inclusive time: a frame counted once per sample even when it recurses.
const inclusive = new Map<string, number>();
const walk = (id: number, seen: Set<string>): number => {
  const n = byId.get(id)!;
  let hits = n.hitCount ?? 0;
  const key = name(n);
  const fresh = !seen.has(key);
  if (fresh) seen.add(key);
  for (const c of n.children ?? []) hits += walk(c, seen);
  if (fresh) {
    seen.delete(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + (n.hitCount ?? 0));
  }
  return hits;
};
// Recompute inclusive properly: sum hits of each subtree, attributing to distinct frames.
const subtree = (id: number, stack: string[]): void => {
  const n = byId.get(id)!;
  const key = name(n);
  stack.push(key);
  const hits = n.hitCount ?? 0;
  if (hits > 0) {
    for (const k of new Set(stack)) {
      inclusive.set(k, (inclusive.get(k) ?? 0) + hits);
    }
  }
  for (const c of n.children ?? []) subtree(c, stack);
  stack.pop();
};
inclusive.clear();
subtree(profile.nodes[0]!.id, []);
void walk;

const top = Number(values.top);
const pct = (h: number) => `${(100 * h / total).toFixed(1).padStart(5)}%`;
const print = (title: string, m: Map<string, number>) => {
  // deno-lint-ignore no-console -- the tool's output
  console.log(`\n${title} (${total} samples)`);
  for (const [k, h] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    // deno-lint-ignore no-console -- the tool's output
    console.log(`${pct(h)}  ${k}`);
  }
};
print("self time", self);
print("inclusive time", inclusive);
