/**
 * @module
 * Everything a node touches outside its own memory: the clock, timers, the file system,
 * the network and its source of randomness, bundled as a {@linkcode Runtime}. Production
 * uses {@linkcode systemRuntime}; the whole-cluster simulation (`tests/sim/`) passes one
 * per simulated process, on virtual time, an in-memory disk and a simulated network, so
 * that one seed replays a run exactly. Subsystems take the parts they need (with the
 * system ones as defaults) and never call `Date.now`, `setTimeout`, `Deno.open`,
 * `Deno.connect` or `crypto` themselves (`tests/unit/runtime/escape_test.ts` checks).
 */
import { type Clock, systemClock } from "../util/clock.ts";
import { Random } from "../util/random.ts";
import { denoFs, type FileSystem } from "./fs.ts";
import { denoNet, type Network } from "./net.ts";
import { systemTimers, type Timers } from "./timers.ts";

export type { Clock } from "../util/clock.ts";
export {
  denoFs,
  type DirEntry,
  ensureDir,
  type FileHandle,
  type FileInfo,
  type FileSystem,
  type OpenOptions,
  syncDir,
} from "./fs.ts";
export { type Conn, denoNet, type Listener, type NetAddr, type Network } from "./net.ts";
export { sleep, systemTimers, type TimerHandle, type Timers, yieldToEventLoop } from "./timers.ts";

/** A process's contact with the world. */
export interface Runtime {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly fs: FileSystem;
  readonly net: Network;
  /** Seeds every random choice (election timeouts, ids); seeded in simulations. */
  readonly random: Random;
}

/** The real clock, timers, disk and network, with randomness from the OS. */
export function systemRuntime(): Runtime {
  return {
    clock: systemClock,
    timers: systemTimers,
    fs: denoFs,
    net: denoNet,
    random: Random.fromCrypto(),
  };
}
