/**
 * This node as a broker of the cluster (Kafka's BrokerLifecycleManager): registers with
 * the controller under a fresh incarnation id, heartbeats every interval reporting the
 * metadata offset it has applied, and learns from the answers when it is unfenced
 * (caught up) or may finish a controlled shutdown. A failed or stale registration
 * (STALE_BROKER_EPOCH, e.g. after the controller saw the session expire and the broker
 * re-registered) registers again.
 */
import type { Logger } from "@logtape/logtape";
import { ErrorCode } from "../protocol/error_codes.ts";
import { systemTimers, type TimerHandle, type Timers } from "../runtime/timers.ts";
import { TidelogError } from "../util/errors.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { getLogger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import type { ControllerChannel } from "./controller_channel.ts";
import type { RaftMetadataStore } from "./raft_metadata_store.ts";
import type { BrokerEndpoint } from "./records.ts";
import { randomUuid } from "./uuid.ts";

const CONTROLLED_SHUTDOWN_POLL_MS = 25;
/** How often a broker checks whether the controller changed (to heartbeat to it at once). */
const CONTROLLER_WATCH_MS = 10;

/** Options of {@linkcode BrokerLifecycle}. */
export interface BrokerLifecycleOptions {
  nodeId: number;
  clusterId: string;
  endpoint: BrokerEndpoint;
  store: RaftMetadataStore;
  channel: ControllerChannel;
  /** Kafka `broker.heartbeat.interval.ms`. */
  heartbeatIntervalMs: number;
  /** Timers of the heartbeat pauses and the controlled-shutdown timeout. @default systemTimers */
  timers?: Timers;
  /** Source of the incarnation id (seeded in simulations). @default the OS's generator */
  random?: Random;
  /** When heartbeats were sent (the broker's session lease). @default systemClock */
  clock?: Clock;
  logger?: Logger;
}

/** See the module documentation. */
export class BrokerLifecycle {
  readonly #o: BrokerLifecycleOptions;
  readonly #log: Logger;
  readonly #timers: Timers;
  readonly #clock: Clock;
  readonly incarnationId: string;
  /** When the last heartbeat the controller answered was sent; -1: none yet. */
  #lastAckedSendMs = -1;
  #brokerEpoch = -1;
  #fenced = true;
  #wantShutDown = false;
  #shutdownReady: PromiseWithResolvers<void> = Promise.withResolvers();
  #unfencedWaiters: (() => void)[] = [];
  #closed = false;
  #loop: Promise<void>;
  #wake: (() => void) | null = null;

  constructor(options: BrokerLifecycleOptions) {
    this.#o = options;
    this.#log = options.logger ?? getLogger(["tidelog", "broker"]);
    this.#timers = options.timers ?? systemTimers;
    this.#clock = options.clock ?? systemClock;
    this.incarnationId = randomUuid(options.random);
    this.#loop = this.#run();
  }

  /** The epoch of this broker's registration; -1 until registered. */
  get brokerEpoch(): number {
    return this.#brokerEpoch;
  }

  /**
   * When the last heartbeat the controller answered was sent (-1 before the first). The
   * controller fences a broker it has not heard from for the session timeout, counted
   * from when a heartbeat arrived, which is after it was sent: so once this is older than
   * the session timeout, the controller may have fenced this broker already.
   */
  get lastAckedHeartbeatSentMs(): number {
    return this.#lastAckedSendMs;
  }

  /** Whether the controller last said this broker is fenced. */
  get fenced(): boolean {
    return this.#fenced;
  }

  /** Resolves once the controller has unfenced this broker. */
  whenUnfenced(): Promise<void> {
    if (!this.#fenced) return Promise.resolve();
    return new Promise((resolve) => this.#unfencedWaiters.push(resolve));
  }

  /**
   * Controlled shutdown: asks the controller to move this broker's leaderships away and
   * resolves once it says the broker may stop, or after `timeoutMs`.
   */
  async controlledShutdown(timeoutMs: number): Promise<boolean> {
    if (this.#brokerEpoch < 0 || this.#closed) return false;
    this.#wantShutDown = true;
    this.#wake?.();
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<boolean>((r) => {
      timer = this.#timers.setTimeout(() => r(false), timeoutMs);
    });
    const done = await Promise.race([this.#shutdownReady.promise.then(() => true), timedOut]);
    this.#timers.clearTimeout(timer);
    return done;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    while (!this.#closed) {
      let failed = false;
      try {
        if (this.#brokerEpoch < 0) {
          this.#brokerEpoch = await o.channel.registerBroker({
            brokerId: o.nodeId,
            clusterId: o.clusterId,
            incarnationId: this.incarnationId,
            endpoints: [o.endpoint],
            rack: null,
          });
          this.#log.info("Registered as broker {id} with epoch {epoch}", {
            id: o.nodeId,
            epoch: this.#brokerEpoch,
          });
        }
        const sentMs = this.#clock.nowMs();
        const reply = await o.channel.heartbeat({
          brokerId: o.nodeId,
          brokerEpoch: this.#brokerEpoch,
          currentMetadataOffset: o.store.deliveredOffset,
          wantFence: false,
          wantShutDown: this.#wantShutDown,
        }, Math.max(1000, o.heartbeatIntervalMs * 4));
        this.#lastAckedSendMs = Math.max(this.#lastAckedSendMs, sentMs);
        this.#setFenced(reply.isFenced);
        if (reply.shouldShutDown) this.#shutdownReady.resolve();
      } catch (err) {
        if (this.#closed) break;
        if (err instanceof TidelogError && err.code === ErrorCode.STALE_BROKER_EPOCH) {
          this.#log.warn("The controller no longer knows registration {epoch}; registering again", {
            epoch: this.#brokerEpoch,
          });
          this.#brokerEpoch = -1;
          this.#setFenced(true);
          continue;
        }
        failed = true;
        const props = { error: (err as Error).message };
        if (err instanceof TidelogError && err.code === ErrorCode.DUPLICATE_BROKER_REGISTRATION) {
          this.#log.info("Registration refused until the old session ends: {error}", props);
        } else {
          this.#log.warn("Heartbeat/registration failed: {error}", props);
        }
      }
      await this.#sleep(failed);
    }
  }

  /**
   * Waits for the next heartbeat: one interval, or less after a failure or while
   * shutting down (the
   * controller lets us go as soon as every live broker has seen our leaderships move), or
   * until the controller changes: a new controller gives brokers a short grace to
   * heartbeat before fencing the previous one, so tell it at once that we are alive.
   */
  async #sleep(afterFailure: boolean): Promise<void> {
    const o = this.#o;
    // After a failed call (it already retried until its deadline), try again at once:
    // the controller fences a broker it has not heard from for the connection grace.
    const interval = this.#wantShutDown || afterFailure
      ? Math.min(CONTROLLED_SHUTDOWN_POLL_MS, o.heartbeatIntervalMs)
      : o.heartbeatIntervalMs;
    const controller = o.store.controllerId();
    const timers = this.#timers;
    await new Promise<void>((resolve) => {
      const done = () => {
        timers.clearTimeout(timer);
        timers.clearInterval(watch);
        resolve();
      };
      const timer = timers.setTimeout(done, interval);
      const watch = timers.setInterval(() => {
        if (o.store.controllerId() !== controller) done();
      }, CONTROLLER_WATCH_MS);
      this.#wake = done;
    });
    this.#wake = null;
  }

  #setFenced(fenced: boolean): void {
    if (fenced === this.#fenced) return;
    this.#fenced = fenced;
    this.#log.info("Broker {id} is {state}", {
      id: this.#o.nodeId,
      state: fenced ? "fenced" : "unfenced",
    });
    if (!fenced) { for (const w of this.#unfencedWaiters.splice(0)) w(); }
  }

  /** Stops heartbeating (the controller will fence this broker when its session ends). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#loop;
  }
}
