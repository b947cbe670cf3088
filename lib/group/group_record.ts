/**
 * The records the coordinator persists in `__consumer_offsets`, and their bytes.
 *
 * Kafka's own layouts (`coordinator/*.json`), so that tools reading the topic decode it:
 * keys are an int16 key version, then int16-length strings: version 1 an OffsetCommitKey
 * (group, topic, partition), version 2 a GroupMetadataKey (group). Values are an int16
 * version and an OffsetCommitValue (version 3, or 1 when the commit carries an expire
 * timestamp, as Kafka writes them) or a GroupMetadataValue (version 3). A tombstone has a
 * null value. As in Kafka, a null offset metadata is stored as "" (the coordinator already
 * commits "" for it), and a group without a protocol type as "" (read back as null).
 *
 * Value version 0 is read as Tidelog's earlier layout (compact strings and bytes), which
 * data directories written before these records followed Kafka's still hold.
 */

import { ByteReader, ByteWriter, decodeData, encodeData, ErrorCode } from "../protocol/mod.ts";
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
/** Tidelog's earlier value layout (read only). */
const LEGACY_VALUE_VERSION = 0;
const OFFSET_VALUE_VERSION = 3;
/** OffsetCommitValue v1: the one with an expire timestamp (and no leader epoch). */
const OFFSET_VALUE_EXPIRE_VERSION = 1;
const GROUP_VALUE_VERSION = 3;

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
  let version: number;
  let body: Uint8Array;
  if (r.kind === "offset") {
    version = r.expireTimestampMs === null ? OFFSET_VALUE_VERSION : OFFSET_VALUE_EXPIRE_VERSION;
    body = encodeData("OffsetCommitValue", version, {
      offset: BigInt(r.offset),
      leaderEpoch: r.leaderEpoch,
      metadata: r.metadata ?? "",
      commitTimestamp: BigInt(r.commitTimestampMs),
      expireTimestamp: BigInt(r.expireTimestampMs ?? -1),
    });
  } else {
    version = GROUP_VALUE_VERSION;
    body = encodeData("GroupMetadataValue", version, {
      protocolType: r.protocolType ?? "",
      generation: r.generationId,
      protocol: r.protocolName,
      leader: r.leaderId,
      currentStateTimestamp: BigInt(r.stateTimestampMs),
      members: r.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeout: m.rebalanceTimeoutMs,
        sessionTimeout: m.sessionTimeoutMs,
        subscription: m.subscription,
        assignment: m.assignment,
      })),
    });
  }
  const v = new ByteWriter(body.length + 2);
  v.int16(version);
  v.raw(body);
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
  const valueVersion = new ByteReader(value).int16();
  if (valueVersion === LEGACY_VALUE_VERSION) {
    return decodeLegacyValue(keyVersion, groupId, topic, partition, value.subarray(2));
  }
  const body = value.subarray(2);
  if (keyVersion === OFFSET_KEY_VERSION) {
    const o = decodeData("OffsetCommitValue", knownVersion(valueVersion, 1, 4), body);
    const expire = valueVersion === OFFSET_VALUE_EXPIRE_VERSION
      ? safe(o.expireTimestamp, "expire timestamp")
      : -1;
    return {
      kind: "offset",
      groupId,
      topic,
      partition,
      offset: safe(o.offset, "offset"),
      leaderEpoch: o.leaderEpoch,
      metadata: o.metadata,
      commitTimestampMs: safe(o.commitTimestamp, "commit timestamp"),
      expireTimestampMs: expire >= 0 ? expire : null,
    };
  }
  const g = decodeData("GroupMetadataValue", knownVersion(valueVersion, 1, 4), body);
  return {
    kind: "group",
    groupId,
    protocolType: g.protocolType === "" ? null : g.protocolType,
    protocolName: g.protocol,
    generationId: g.generation,
    leaderId: g.leader,
    stateTimestampMs: safe(g.currentStateTimestamp, "state timestamp"),
    members: g.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      rebalanceTimeoutMs: m.rebalanceTimeout,
      sessionTimeoutMs: m.sessionTimeout,
      subscription: m.subscription.slice(),
      assignment: m.assignment.slice(),
    })),
  };
}

function knownVersion(version: number, min: number, max: number): number {
  if (version < min || version > max) {
    throw new GroupRecordDecodeError(
      `Cannot decode group record: unknown value version ${version}`,
    );
  }
  return version;
}

/** A value in Tidelog's earlier layout (value version 0; read only). */
function decodeLegacyValue(
  keyVersion: number,
  groupId: string,
  topic: string,
  partition: number,
  value: Uint8Array,
): GroupRecord {
  const v = new ByteReader(value);
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
