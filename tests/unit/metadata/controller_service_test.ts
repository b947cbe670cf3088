/**
 * ControllerService (the controller's shell) on a real one-voter RaftMetadataStore, with
 * the controller's clock and fencing timer under the test's control (ManualClock, timers
 * fired by hand): a slow disk on the controller (its image listener, or its Raft fsync)
 * must not delay heartbeats or turn into fencing, and neither must a stalled controller.
 */
import assert from "node:assert/strict";
import { ControllerService } from "../../../lib/metadata/controller_service.ts";
import {
  type BrokerHeartbeatReply,
  type MetadataImage,
  planCreateTopic,
} from "../../../lib/metadata/mod.ts";
import { RaftMetadataStore } from "../../../lib/metadata/raft_metadata_store.ts";
import { denoFs, type FileHandle, type FileSystem } from "../../../lib/runtime/fs.ts";
import { systemTimers, type TimerHandle, type Timers } from "../../../lib/runtime/timers.ts";
import { ManualClock } from "../../../lib/util/clock.ts";
import { Random } from "../../../lib/util/random.ts";
import { imageContext } from "./_cluster.ts";
import { waitFor } from "./_raft_nodes.ts";

const SESSION_MS = 1500;
const HEARTBEAT_MS = 250;
const BROKERS = [1, 2, 3];

/** Intervals run only when the test says so; timeouts are real (the controller sets none). */
class ManualTimers implements Timers {
  #next = 0;
  readonly #intervals = new Map<number, () => void>();
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return systemTimers.setTimeout(fn, ms);
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    systemTimers.clearTimeout(handle);
  }
  setInterval(fn: () => void): TimerHandle {
    this.#intervals.set(++this.#next, fn);
    return this.#next;
  }
  clearInterval(handle: TimerHandle | undefined): void {
    if (typeof handle === "number") this.#intervals.delete(handle);
  }
  setImmediate(fn: () => void): void {
    systemTimers.setImmediate(fn);
  }
  /** Runs every interval once (the fencing check, here). */
  fire(): void {
    for (const fn of [...this.#intervals.values()]) fn();
  }
}

/** A gate that holds whatever awaits it while closed. */
class Gate {
  #held: PromiseWithResolvers<void> | null = null;
  get closed(): boolean {
    return this.#held !== null;
  }
  close(): void {
    this.#held ??= Promise.withResolvers();
  }
  open(): void {
    this.#held?.resolve();
    this.#held = null;
  }
  pass(): Promise<void> {
    return this.#held?.promise ?? Promise.resolve();
  }
}

/** denoFs whose fsyncs wait at `gate` (a disk that stops syncing while it is closed). */
function gatedFs(gate: Gate): FileSystem {
  const wrap = (f: FileHandle): FileHandle =>
    new Proxy(f, {
      get(target, key) {
        if (key === "sync" || key === "syncData") {
          return async () => {
            await gate.pass();
            return target[key]();
          };
        }
        const v = Reflect.get(target, key, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  return {
    ...denoFs,
    open: async (path, options) => wrap(await denoFs.open(path, options)),
    openSync: (path, options) => wrap(denoFs.openSync(path, options)),
  };
}

const realDelay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates `__consumer_offsets` with 50 partitions, RF 3, over the registered brokers. */
function createOffsetsTopic(image: MetadataImage) {
  const spec = { name: "__consumer_offsets", numPartitions: 50, replicationFactor: 3 };
  const plan = planCreateTopic(image, { ...spec, assignments: [], configs: [] }, imageContext());
  return { records: plan.records, result: plan.topicId };
}

/**
 * Node 1 is the only voter and the controller; brokers 1-3 are registered and unfenced.
 * `listenerGate` holds the image listener (as a slow ReplicaManager.applyImage would),
 * `fsyncGate` holds the Raft log's fsyncs.
 */
class Fixture {
  readonly clock = new ManualClock(1_000_000);
  readonly timers = new ManualTimers();
  readonly listenerGate = new Gate();
  readonly fsyncGate: Gate;
  /** Brokers some committed record moved from unfenced to fenced. */
  readonly fencedEver = new Set<number>();
  readonly epochs = new Map<number, number>();
  readonly dir: string;
  readonly store: RaftMetadataStore;
  readonly controller: ControllerService;

  private constructor(dir: string, store: RaftMetadataStore, fsyncGate: Gate) {
    this.dir = dir;
    this.store = store;
    this.fsyncGate = fsyncGate;
    store.onChange((prev, next) => {
      for (const b of next.brokers.values()) {
        if (b.fenced && prev.brokers.get(b.brokerId)?.fenced === false) {
          this.fencedEver.add(b.brokerId);
        }
      }
    });
    store.onChange(() => this.listenerGate.pass());
    this.controller = new ControllerService({
      nodeId: 1,
      store,
      clock: this.clock,
      timers: this.timers,
      sessionTimeoutMs: SESSION_MS,
      fencingCheckIntervalMs: 50,
      leaderImbalanceCheckIntervalMs: 0,
      uncleanLeaderElection: false,
      clusterIdForNewCluster: "slow-disk",
    });
  }

  static async start(): Promise<Fixture> {
    const dir = await Deno.makeTempDir({ prefix: "controller-service-" });
    const fsyncGate = new Gate();
    const store = await RaftMetadataStore.start({
      nodeId: 1,
      voters: new Map([[1, "127.0.0.1:0"]]),
      dataDir: dir,
      tickMs: 5,
      random: new Random(11),
      fs: gatedFs(fsyncGate),
    });
    const fx = new Fixture(dir, store, fsyncGate);
    await waitFor("the single voter to become controller", () => store.isController() || undefined);
    fx.timers.fire(); // the first fencing check formats the cluster
    await waitFor("the cluster to be formatted", () => store.image.clusterId ?? undefined);
    for (const id of BROKERS) {
      fx.epochs.set(
        id,
        await fx.controller.registerBroker({
          brokerId: id,
          clusterId: "slow-disk",
          incarnationId: `inc-${id}`,
          endpoints: [{ host: "127.0.0.1", port: 9000 + id }],
          rack: null,
        }),
      );
    }
    for (const id of BROKERS) {
      const reply = await fx.heartbeat(id, { offset: store.image.offset });
      assert.equal(reply.isFenced, false, `broker ${id} unfenced at the start`);
    }
    return fx;
  }

  /** A heartbeat from `id`, reporting `offset` (default: what this node's listeners saw). */
  heartbeat(
    id: number,
    options: { offset?: number; wantShutDown?: boolean } = {},
  ): Promise<BrokerHeartbeatReply> {
    return this.controller.heartbeat({
      brokerId: id,
      brokerEpoch: this.epochs.get(id)!,
      currentMetadataOffset: options.offset ?? this.store.deliveredOffset,
      wantFence: false,
      wantShutDown: options.wantShutDown ?? false,
    });
  }

  /** Resolves once every proposal queued before it has run (an empty proposal). */
  settle(): Promise<void> {
    return this.store.propose(() => ({ records: [], result: undefined }));
  }

  fenced(): number[] {
    return [...this.store.image.brokers.values()].filter((b) => b.fenced).map((b) => b.brokerId);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.listenerGate.open();
    this.fsyncGate.open();
    this.controller.close();
    await this.store.close();
    await Deno.remove(this.dir, { recursive: true });
  }
}

/**
 * Runs `ms` of controller time in heartbeat intervals: each interval the clock moves, the
 * fencing timer fires and `heartbeating` brokers heartbeat (not awaited: a slow answer
 * must not slow the brokers' clock). Returns the heartbeats and how many were answered
 * while `gate` was still closed.
 */
async function liveBrokersFor(
  fx: Fixture,
  ms: number,
  heartbeating: readonly number[],
  gate: Gate,
): Promise<{ all: Promise<BrokerHeartbeatReply>[]; answeredWhileClosed: () => number }> {
  const all: Promise<BrokerHeartbeatReply>[] = [];
  let answered = 0;
  for (let t = 0; t < ms; t += HEARTBEAT_MS) {
    fx.clock.advance(HEARTBEAT_MS);
    fx.timers.fire();
    for (const id of heartbeating) {
      const hb = fx.heartbeat(id);
      all.push(hb);
      hb.then(() => {
        if (gate.closed) answered++;
      }, () => {});
    }
    // Real time for the store's Raft loop (commits, applies) between intervals.
    await realDelay(5);
  }
  return { all, answeredWhileClosed: () => answered };
}

Deno.test("ControllerService: a slow image listener (applyImage) delays no heartbeat and fences no live broker", async () => {
  await using fx = await Fixture.start();
  fx.listenerGate.close();
  // CreateTopics of a 50-partition topic: the applyImage that follows takes "forever".
  let created = false;
  const creation = fx.store.propose(createOffsetsTopic).then(() => {
    created = true;
  });
  await waitFor("the topic to commit", () => fx.store.image.topic("__consumer_offsets"));
  // Over three sessions of controller time while the listener is held.
  const run = await liveBrokersFor(fx, 3 * SESSION_MS + 500, BROKERS, fx.listenerGate);
  const promptly = await waitFor(
    "every heartbeat to be answered while the listener is held",
    () => run.answeredWhileClosed() === run.all.length || undefined,
    3000,
  ).catch(() => false);
  assert.equal(created, false, "CreateTopics still answers only once this node applied it");
  fx.listenerGate.open();
  await creation;
  const replies = await Promise.all(run.all);
  fx.timers.fire();
  await fx.settle();
  assert.deepEqual([...fx.fencedEver], [], "no live broker was fenced");
  assert.deepEqual(fx.fenced(), []);
  assert.ok(replies.every((r) => !r.isFenced), "every answer said unfenced");
  assert.ok(
    promptly,
    `heartbeats answered while applyImage was held: ${run.answeredWhileClosed()} of ${run.all.length}`,
  );
});

Deno.test("ControllerService: a controller whose Raft fsync stalls fences no live broker, not even one whose heartbeat waits for a commit", async () => {
  await using fx = await Fixture.start();
  fx.fsyncGate.close();
  // Nothing commits now: the topic creation waits, and so will every later proposal.
  const creation = fx.store.propose(createOffsetsTopic);
  fx.clock.advance(10);
  fx.timers.fire(); // a fencing check queued behind it
  // Broker 3 asks for a controlled shutdown: that needs records, so its heartbeat waits
  // for the disk too, and (like a broker talking to its own controller) sends no other.
  const shutdown: { reply?: BrokerHeartbeatReply } = {};
  const shutdownAnswered = fx.heartbeat(3, { wantShutDown: true }).then((r) => shutdown.reply = r);
  const run = await liveBrokersFor(fx, 3 * SESSION_MS + 500, [1, 2], fx.fsyncGate);
  const promptly = await waitFor(
    "the heartbeats that change nothing to be answered while the disk is stalled",
    () => run.answeredWhileClosed() === run.all.length || undefined,
    3000,
  ).catch(() => false);
  assert.ok(!("reply" in shutdown), "the shutdown heartbeat waits for its records");
  fx.fsyncGate.open();
  await creation;
  await shutdownAnswered;
  await Promise.all(run.all);
  await fx.settle();
  assert.deepEqual([...fx.fencedEver], [], "no broker was fenced");
  assert.equal(shutdown.reply?.inControlledShutdown, true, JSON.stringify(shutdown.reply));
  assert.ok(
    promptly,
    `heartbeats answered while the disk was stalled: ${run.answeredWhileClosed()} of ${run.all.length}`,
  );
});

Deno.test("ControllerService: a controller that did not run for longer than half a session gives every broker a fresh session", async () => {
  await using fx = await Fixture.start();
  // The controller's process stops (event loop or disk) for two sessions: no timer, no
  // heartbeat read. The first thing it does on waking is its fencing check.
  fx.clock.advance(2 * SESSION_MS);
  fx.timers.fire();
  await fx.settle();
  assert.deepEqual(fx.fenced(), [], "nobody fenced on evidence from before the stall");
  // Broker 3 is really gone: it is fenced one session after the controller resumed.
  await liveBrokersFor(fx, SESSION_MS, [1, 2], new Gate());
  await fx.settle();
  assert.deepEqual(fx.fenced(), [], "not before a whole session since the resume");
  await liveBrokersFor(fx, 2 * HEARTBEAT_MS, [1, 2], new Gate());
  await fx.settle();
  assert.deepEqual(fx.fenced(), [3]);
});
