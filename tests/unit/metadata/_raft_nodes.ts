/**
 * In-process {@linkcode RaftMetadataStore} nodes on real TCP (127.0.0.1, free ports) and
 * real files (a temp dir), for the metadata tests: start, stop, restart on the same dir
 * and port, find the controller, propose with retries, wait for convergence.
 */
import assert from "node:assert/strict";
import {
  type ControllerContext,
  type MetadataImage,
  type MetadataRecord,
  planCreateTopic,
  randomUuid,
} from "../../../lib/metadata/mod.ts";
import { RaftMetadataStore } from "../../../lib/metadata/raft_metadata_store.ts";
import { NotLeaderError, ProposalDroppedError } from "../../../lib/raft/mod.ts";
import { Random } from "../../../lib/util/random.ts";

/** Ports that were free a moment ago on 127.0.0.1. */
export function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => l.addr.port);
  for (const l of listeners) l.close();
  return ports;
}

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
  everyMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Settles like `p`, or rejects after `timeoutMs` (the timer is always cleared). */
export async function withDeadline<T>(p: Promise<T>, what: string, timeoutMs = 20_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A controller context for a cluster whose only broker is `brokers`. */
export function controllerContext(brokers: number[] = [1]): ControllerContext {
  return {
    liveBrokers: brokers,
    defaults: { numPartitions: 1, defaultReplicationFactor: 1 },
    newTopicId: randomUuid,
  };
}

/** An idempotent plan: creates topic `name` unless it exists; result: its topic id. */
export function createTopic(name: string, partitions = 1) {
  return (image: MetadataImage) => {
    const existing = image.topic(name);
    if (existing !== undefined) return { records: [], result: existing.topicId };
    const plan = planCreateTopic(
      image,
      { name, numPartitions: partitions, replicationFactor: -1, assignments: [], configs: [] },
      controllerContext(),
    );
    return { records: plan.records, result: plan.topicId };
  };
}

/** Options for every store of a {@linkcode RaftNodes}. */
export interface RaftNodesOptions {
  snapshotEvery?: number;
  tickMs?: number;
  electionTicks?: number;
}

/** N voters in this process; `await using` closes every store and removes the dir. */
export class RaftNodes {
  readonly base: string;
  readonly voters: ReadonlyMap<number, string>;
  readonly #options: RaftNodesOptions;
  readonly #stores = new Map<number, RaftMetadataStore>();
  #starts = 0;

  private constructor(base: string, voters: Map<number, string>, options: RaftNodesOptions) {
    this.base = base;
    this.voters = voters;
    this.#options = options;
  }

  /** Allocates ports and a temp dir for voters 1..n (none started). */
  static async create(n: number, options: RaftNodesOptions = {}): Promise<RaftNodes> {
    const base = await Deno.makeTempDir({ prefix: "raft-metadata-" });
    const ports = freePorts(n);
    const voters = new Map(ports.map((p, i) => [i + 1, `127.0.0.1:${p}`]));
    return new RaftNodes(base, voters, options);
  }

  /** Starts (or restarts, on the same dir and port) node `id`; `setup` runs before return. */
  async start(
    id: number,
    setup?: (store: RaftMetadataStore) => void,
  ): Promise<RaftMetadataStore> {
    assert.ok(!this.#stores.has(id), `node ${id} is already running`);
    const store = await RaftMetadataStore.start({
      nodeId: id,
      voters: this.voters,
      dataDir: `${this.base}/node-${id}`,
      tickMs: this.#options.tickMs ?? 20,
      electionTicks: this.#options.electionTicks ?? 10,
      ...(this.#options.snapshotEvery !== undefined
        ? { snapshotEvery: this.#options.snapshotEvery }
        : {}),
      random: new Random(id * 7919 + ++this.#starts),
    });
    setup?.(store);
    this.#stores.set(id, store);
    return store;
  }

  /** Closes node `id` (its files stay). */
  async stop(id: number): Promise<void> {
    const store = this.get(id);
    this.#stores.delete(id);
    await store.close();
  }

  get(id: number): RaftMetadataStore {
    const store = this.#stores.get(id);
    assert.ok(store, `node ${id} is not running`);
    return store;
  }

  /** Ids of the running nodes, ascending. */
  running(): number[] {
    return [...this.#stores.keys()].sort((a, b) => a - b);
  }

  /** Waits until one running node is the controller and every running node names it. */
  leader(timeoutMs = 20_000): Promise<number> {
    return waitFor("a controller every running node agrees on", () => {
      const ids = this.running();
      const leader = ids.find((id) => this.get(id).isController());
      if (leader === undefined) return undefined;
      return ids.every((id) => this.get(id).controllerId() === leader) ? leader : undefined;
    }, timeoutMs);
  }

  /**
   * Proposes `plan` on the current controller, retrying on NotLeaderError and
   * ProposalDroppedError (plans must be idempotent: a maybe-committed entry is re-planned).
   */
  async propose<T>(
    plan: (image: MetadataImage) => { records: MetadataRecord[]; result: T },
    timeoutMs = 30_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = await this.leader(Math.max(1, deadline - Date.now()));
      try {
        return await this.get(leader).propose(plan);
      } catch (err) {
        const retriable = err instanceof NotLeaderError || err instanceof ProposalDroppedError;
        if (!retriable || Date.now() > deadline) throw err;
      }
    }
  }

  /** Waits until every running node (or `ids`) holds the same image; returns it. */
  converged(ids: number[] = this.running(), timeoutMs = 20_000): Promise<MetadataImage> {
    return waitFor(`nodes ${ids.join(",")} to converge`, () => {
      const images = ids.map((id) => this.get(id).image);
      const first = images[0]!;
      const bytes = first.toSnapshot();
      const same = images.every((im) =>
        im.offset === first.offset && equalBytes(im.toSnapshot(), bytes)
      );
      return same ? first : undefined;
    }, timeoutMs);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const id of this.running()) await this.stop(id);
    await Deno.remove(this.base, { recursive: true });
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
