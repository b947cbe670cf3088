/**
 * The records the coordinator persists in `__consumer_offsets`, and their bytes.
 *
 * Keys follow Kafka's layout (int16 key version, then int16-length strings): version 1 is an
 * offset key (group, topic, partition), version 2 a group metadata key (group). Values use
 * Tidelog's own layout (int16 value version 0, compact strings and bytes, int64 numbers), so
 * that every field round-trips exactly, nulls included. A tombstone has a null value.
 */

import { ByteReader, ByteWriter, ErrorCode } from "../protocol/mod.ts";
import { TidelogError } from "../util/errors.ts";

/** One member as stored in a "group" record (Kafka's GroupMetadataValue member). */
export interface GroupRecordMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  /** The member's metadata for the group's selected protocol. */
  subscription: Uint8Array;
  assignment: Uint8Array;
}

/**
 * A persisted change: the shell appends these (acks=all semantics) to the group's
 * `__consumer_offsets` partition BEFORE releasing the responses of the same output;
 * replayed with `GroupCoordinator.load()`.
 */
export type GroupRecord =
  | {
    kind: "offset";
    groupId: string;
    topic: string;
    partition: number;
    offset: number;
    leaderEpoch: number;
    metadata: string | null;
    commitTimestampMs: number;
    expireTimestampMs: number | null;
  }
  | { kind: "offset-tombstone"; groupId: string; topic: string; partition: number }
  | {
    kind: "group";
    groupId: string;
    protocolType: string | null;
    protocolName: string | null;
    generationId: number;
    leaderId: string | null;
    stateTimestampMs: number;
    members: GroupRecordMember[];
  }
  | { kind: "group-tombstone"; groupId: string };

/** The bytes of a {@linkcode GroupRecord} could not be decoded. */
export class GroupRecordDecodeError extends TidelogError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.CORRUPT_MESSAGE, message, options);
  }
}

const OFFSET_KEY_VERSION = 1;
const GROUP_KEY_VERSION = 2;
const VALUE_VERSION = 0;

/**
 * The key and value bytes of a record as stored in a Kafka record of `__consumer_offsets`
 * (a tombstone's value is null).
 *
 * @example
 * ```ts
 * import { decodeGroupRecord, encodeGroupRecord } from "./group_record.ts";
 * const { key, value } = encodeGroupRecord({ kind: "group-tombstone", groupId: "g" });
 * if (value !== null || decodeGroupRecord(key, value).groupId !== "g") throw new Error("bad");
 * ```
 */
export function encodeGroupRecord(r: GroupRecord): { key: Uint8Array; value: Uint8Array | null } {
  const k = new ByteWriter(64);
  if (r.kind === "offset" || r.kind === "offset-tombstone") {
    k.int16(OFFSET_KEY_VERSION);
    k.string(r.groupId);
    k.string(r.topic);
    k.int32(r.partition);
  } else {
    k.int16(GROUP_KEY_VERSION);
    k.string(r.groupId);
  }
  const key = k.finish();
  if (r.kind === "offset-tombstone" || r.kind === "group-tombstone") return { key, value: null };
  const v = new ByteWriter(128);
  v.int16(VALUE_VERSION);
  if (r.kind === "offset") {
    v.int64(BigInt(r.offset));
    v.int32(r.leaderEpoch);
    v.compactString(r.metadata);
    v.int64(BigInt(r.commitTimestampMs));
    v.bool(r.expireTimestampMs !== null);
    if (r.expireTimestampMs !== null) v.int64(BigInt(r.expireTimestampMs));
  } else {
    v.compactString(r.protocolType);
    v.compactString(r.protocolName);
    v.int32(r.generationId);
    v.compactString(r.leaderId);
    v.int64(BigInt(r.stateTimestampMs));
    v.uvarint(r.members.length);
    for (const m of r.members) {
      v.compactString(m.memberId);
      v.compactString(m.groupInstanceId);
      v.compactString(m.clientId);
      v.compactString(m.clientHost);
      v.int32(m.rebalanceTimeoutMs);
      v.int32(m.sessionTimeoutMs);
      v.compactBytes(m.subscription);
      v.compactBytes(m.assignment);
    }
  }
  return { key, value: v.finish() };
}

/**
 * Decodes the key and value of a `__consumer_offsets` record (null value: a tombstone).
 * Byte fields are copies, independent of the input buffers.
 *
 * @throws {GroupRecordDecodeError} If the bytes are truncated, have trailing bytes, an
 * unknown key or value version, or a number out of range.
 */
export function decodeGroupRecord(key: Uint8Array, value: Uint8Array | null): GroupRecord {
  try {
    return decode(key, value);
  } catch (e) {
    if (e instanceof GroupRecordDecodeError) throw e;
    throw new GroupRecordDecodeError(`Cannot decode group record: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

function decode(key: Uint8Array, value: Uint8Array | null): GroupRecord {
  const k = new ByteReader(key);
  const keyVersion = k.int16();
  const groupId = nonNull(k.string(false));
  let topic = "";
  let partition = 0;
  if (keyVersion === OFFSET_KEY_VERSION) {
    topic = nonNull(k.string(false));
    partition = k.int32();
  } else if (keyVersion !== GROUP_KEY_VERSION) {
    throw new GroupRecordDecodeError(
      `Cannot decode group record: unknown key version ${keyVersion}`,
    );
  }
  end(k, "key");
  if (value === null) {
    return keyVersion === OFFSET_KEY_VERSION
      ? { kind: "offset-tombstone", groupId, topic, partition }
      : { kind: "group-tombstone", groupId };
  }
  const v = new ByteReader(value);
  const valueVersion = v.int16();
  if (valueVersion !== VALUE_VERSION) {
    throw new GroupRecordDecodeError(
      `Cannot decode group record: unknown value version ${valueVersion}`,
    );
  }
  let r: GroupRecord;
  if (keyVersion === OFFSET_KEY_VERSION) {
    const offset = safe(v.int64(), "offset");
    const leaderEpoch = v.int32();
    const metadata = v.compactString(true);
    const commitTimestampMs = safe(v.int64(), "commit timestamp");
    const hasExpire = v.bool();
    const expireTimestampMs = hasExpire ? safe(v.int64(), "expire timestamp") : null;
    r = {
      kind: "offset",
      groupId,
      topic,
      partition,
      offset,
      leaderEpoch,
      metadata,
      commitTimestampMs,
      expireTimestampMs,
    };
  } else {
    const protocolType = v.compactString(true);
    const protocolName = v.compactString(true);
    const generationId = v.int32();
    const leaderId = v.compactString(true);
    const stateTimestampMs = safe(v.int64(), "state timestamp");
    const n = v.checkCount(v.uvarint(), 8, "members");
    const members: GroupRecordMember[] = [];
    for (let i = 0; i < n; i++) {
      members.push({
        memberId: nonNull(v.compactString(false)),
        groupInstanceId: v.compactString(true),
        clientId: nonNull(v.compactString(false)),
        clientHost: nonNull(v.compactString(false)),
        rebalanceTimeoutMs: v.int32(),
        sessionTimeoutMs: v.int32(),
        subscription: nonNull(v.compactBytes(false)).slice(),
        assignment: nonNull(v.compactBytes(false)).slice(),
      });
    }
    r = {
      kind: "group",
      groupId,
      protocolType,
      protocolName,
      generationId,
      leaderId,
      stateTimestampMs,
      members,
    };
  }
  end(v, "value");
  return r;
}

function nonNull<T>(x: T | null): T {
  if (x === null) throw new GroupRecordDecodeError("Cannot decode group record: unexpected null");
  return x;
}

function safe(x: bigint, what: string): number {
  if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new GroupRecordDecodeError(`Cannot decode group record: ${what} ${x} is not safe`);
  }
  return Number(x);
}

function end(r: ByteReader, what: string): void {
  if (r.remaining !== 0) {
    throw new GroupRecordDecodeError(
      `Cannot decode group record: ${r.remaining} trailing bytes in ${what}`,
    );
  }
}
