/**
 * Plain value types exchanged by the Raft core, its storage and its transport: entries,
 * messages, hard state, configurations and snapshots. No behaviour lives here.
 */

/** "No node": the id used for "no vote" and "no known leader". Node ids are ≥ 1. */
export const NONE = 0;

/** Kinds of log entries. */
export const EntryType = {
  /** Application data (empty data: the leader's no-op at the start of its term). */
  Normal: 0,
  /** A membership change; `data` is an encoded {@linkcode ConfState} (see `encodeConfState`). */
  ConfChange: 1,
} as const;
/** One of {@linkcode EntryType}'s values. */
export type EntryType = typeof EntryType[keyof typeof EntryType];

/** A Raft log entry. Entries are immutable once created; 1-based `index`. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must survive a crash besides the log: current term, vote in it, commit index. */
export interface HardState {
  readonly term: number;
  readonly vote: number;
  readonly commit: number;
}

/** A cluster membership: voters count in quorums, learners only receive the log. */
export interface ConfState {
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  /** Known Raft addresses ("host:port") by node id, carried for the transport. */
  readonly addrs?: Readonly<Record<number, string>>;
}

/** A state-machine snapshot covering the log up to `index` (whose entry had `term`). */
export interface Snapshot {
  readonly index: number;
  readonly term: number;
  /** Membership in force at `index`. */
  readonly conf: ConfState;
  /** The application's state-machine image. */
  readonly data: Uint8Array;
}

/** Raft message kinds (the wire values are these numbers). */
export const MessageType = {
  App: 1,
  AppResp: 2,
  Vote: 3,
  VoteResp: 4,
  PreVote: 5,
  PreVoteResp: 6,
  Heartbeat: 7,
  HeartbeatResp: 8,
  Snap: 9,
  TimeoutNow: 10,
} as const;
/** One of {@linkcode MessageType}'s values. */
export type MessageType = typeof MessageType[keyof typeof MessageType];

const TYPE_NAMES: string[] = [];
for (const [name, value] of Object.entries(MessageType)) TYPE_NAMES[value] = name;

/** Name of a message type, for logs and traces. */
export function messageTypeName(type: MessageType): string {
  return TYPE_NAMES[type] ?? `Unknown(${type})`;
}

/**
 * A Raft message. Field meaning follows etcd's `raftpb.Message`:
 * - App: `index`/`logTerm` = the entry preceding `entries`; `commit` = leader's commit.
 * - AppResp: `index` = last index now matching (accept) or the rejected `index`
 *   (reject, with `rejectHint`/`logTerm` for fast back-off).
 * - Vote/PreVote: `index`/`logTerm` = candidate's last entry; `force` = leadership transfer.
 * - Heartbeat: `commit` = min(leader commit, follower match).
 * - Snap: `snapshot`.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: number;
  readonly to: number;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly force: boolean;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
}

/** Builds a message, defaulting every field not given to zero/empty. */
export function makeMessage(
  fields: Pick<Message, "type" | "from" | "to" | "term"> & Partial<Message>,
): Message {
  return {
    logTerm: 0,
    index: 0,
    commit: 0,
    reject: false,
    rejectHint: 0,
    force: false,
    entries: [],
    ...fields,
  };
}

/**
 * Encodes a {@linkcode ConfState} (the data of a ConfChange entry) as UTF-8 JSON: conf
 * changes are rare and small, so readability wins over compactness.
 */
export function encodeConfState(conf: ConfState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    voters: [...conf.voters],
    learners: [...conf.learners],
    addrs: conf.addrs ?? {},
  }));
}

/** Decodes {@linkcode encodeConfState}'s output; throws `SyntaxError` on malformed data. */
export function decodeConfState(data: Uint8Array): ConfState {
  const raw = JSON.parse(new TextDecoder().decode(data)) as unknown;
  if (typeof raw !== "object" || raw === null) {
    throw new SyntaxError("Cannot decode conf state: not an object");
  }
  const o = raw as { voters?: unknown; learners?: unknown; addrs?: unknown };
  const ids = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x) && x > 0)) {
      throw new SyntaxError(`Cannot decode conf state: ${what} is not a list of node ids`);
    }
    return v as number[];
  };
  const addrs: Record<number, string> = {};
  if (typeof o.addrs === "object" && o.addrs !== null) {
    for (const [k, v] of Object.entries(o.addrs)) if (typeof v === "string") addrs[Number(k)] = v;
  }
  return { voters: ids(o.voters, "voters"), learners: ids(o.learners, "learners"), addrs };
}

/** The membership change a caller asks for (one server at a time). */
export type ConfChange =
  | { readonly type: "addVoter"; readonly nodeId: number; readonly addr?: string }
  | { readonly type: "addLearner"; readonly nodeId: number; readonly addr?: string }
  | { readonly type: "removeNode"; readonly nodeId: number };

/**
 * The configuration after applying `change` to `conf`. Throws `RangeError` if the change
 * is a no-op or would leave no voter.
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const voters = new Set(conf.voters);
  const learners = new Set(conf.learners);
  const addrs: Record<number, string> = { ...(conf.addrs ?? {}) };
  const id = change.nodeId;
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new RangeError(`Cannot change membership: invalid node id ${id}`);
  }
  switch (change.type) {
    case "addVoter":
      if (voters.has(id)) throw new RangeError(`Cannot add voter ${id}: already a voter`);
      learners.delete(id);
      voters.add(id);
      if (change.addr !== undefined) addrs[id] = change.addr;
      break;
    case "addLearner":
      if (voters.has(id)) throw new RangeError(`Cannot add learner ${id}: it is a voter`);
      if (learners.has(id)) throw new RangeError(`Cannot add learner ${id}: already a learner`);
      learners.add(id);
      if (change.addr !== undefined) addrs[id] = change.addr;
      break;
    case "removeNode":
      if (!voters.has(id) && !learners.has(id)) {
        throw new RangeError(`Cannot remove node ${id}: not a member`);
      }
      voters.delete(id);
      learners.delete(id);
      if (voters.size === 0) throw new RangeError(`Cannot remove node ${id}: it is the last voter`);
      break;
  }
  return {
    voters: [...voters].sort((a, b) => a - b),
    learners: [...learners].sort((a, b) => a - b),
    addrs,
  };
}
