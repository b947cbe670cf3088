/**
 * @module
 * Raft consensus for the cluster metadata (DESIGN §6). Owns: the pure core
 * ({@linkcode RaftCore}: election with pre-vote and check-quorum, replication with fast
 * back-off, commit of current-term entries by counting, leadership transfer, learners,
 * single-server membership changes, snapshots/InstallSnapshot), durable storage
 * ({@linkcode DiskStorage}: CRC32C-framed log segments, two-slot hard state, snapshot
 * files), the TCP transport ({@linkcode TcpTransport}) and the driver
 * ({@linkcode RaftDriver}) that runs them with an application {@linkcode StateMachine}.
 * Must not know about topics, brokers or Kafka requests.
 *
 * Driver contract (what {@linkcode RaftDriver} does for every {@linkcode Ready}; any
 * other driver must do the same):
 * 1. Send `ready.messages` (leader traffic and pre-votes: no persistence needed).
 * 2. Persist `ready.snapshot` (if any), then `ready.entries` (truncating the stored log
 *    at the first entry's index), then `ready.hardState`; fsync if `ready.mustSync`.
 * 3. Send `ready.messagesAfterPersist` (votes, acknowledgements; thesis §3.8).
 * 4. Restore the state machine from `ready.snapshot` (if any), then apply
 *    `ready.committedEntries` in order.
 * 5. Call `core.advance(ready)`. No other core call happens between `ready()` and
 *    `advance()`; snapshots (`core.compact`) are taken after `advance()`, persisted
 *    before the stored log is compacted.
 *
 * Non-obvious:
 * - A membership change takes effect when appended, not when committed (thesis §4.1); a
 *   leader accepts a new one only after the previous one and an entry of its own term
 *   committed.
 * - `propose()` rejects with `NotLeaderError{maybeCommitted: true}` when leadership is
 *   lost while the entry is in flight: it may still commit, so retries must be idempotent.
 * - The leader counts itself towards a commit only for entries it has fsynced.
 * - `ready.hardState.commit` never exceeds what was durable before that Ready: entries and
 *   hard state are fsynced in parallel, and a durable commit index pointing past the
 *   durable log could make a restarted node apply a stale, divergent entry (found by the
 *   simulation).
 * - Every node must start with the same initial `voters` (ids and addresses): they form
 *   the configuration at index 0, and addresses travel inside configuration entries.
 * - When the leader's inbound connection drops (as on `kill -9`), followers forget it
 *   (`RaftCore.forgetLeader`) and campaign within electionTicks/2 ticks instead of a full
 *   election timeout. This only affects liveness.
 * - Membership changes are single-server only (no joint consensus).
 *
 * @example
 * ```ts ignore
 * import { RaftDriver } from "./mod.ts";
 * const driver = await RaftDriver.start({
 *   nodeId: 1,
 *   voters: new Map([[1, "127.0.0.1:9192"]]),
 *   dataDir: "./data/node-1",
 *   stateMachine: { apply() {}, snapshot: () => new Uint8Array(), restore() {} },
 * });
 * await driver.propose(new TextEncoder().encode("hello"));
 * await driver.close();
 * ```
 */
export {
  type CoreStatus,
  type PeerStatus,
  type ProposeRefusal,
  type ProposeResult,
  RaftCore,
  type RaftCoreOptions,
  type RaftLogger,
  type Ready,
  type Role,
} from "./core.ts";
export {
  type AppliedEntry,
  type ProposalResult,
  RaftDriver,
  type RaftDriverConfig,
  type RaftStatus,
  type StateMachine,
} from "./driver.ts";
export { DiskStorage, type DiskStorageOptions, type RecoveredState } from "./disk_storage.ts";
export { FRAME_VERSION, parseAddr, TcpTransport, type TransportOptions } from "./transport.ts";
export { NotLeaderError, ProposalDroppedError, RaftClosedError } from "./errors.ts";
export { decodeMessage, encodeMessage } from "./codec.ts";
export {
  applyConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type Snapshot,
} from "./messages.ts";
