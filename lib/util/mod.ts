/**
 * @module
 * Small pieces every subsystem shares: CRC32C, a seeded random source, clocks,
 * assertions, typed errors and logging. No Kafka or Raft knowledge lives here.
 */
export { crc32c } from "./crc32c.ts";
export { Random } from "./random.ts";
export { type Clock, ManualClock, systemClock } from "./clock.ts";
export { assert, AssertionError, unreachable } from "./assert.ts";
export { CorruptBatchError, errorCodeOf, OffsetOutOfRangeError, TidelogError } from "./errors.ts";
export { configureLogging, getLogger, type LogLevel } from "./log.ts";
export { TimeoutError, withTimeout } from "./timeout.ts";
