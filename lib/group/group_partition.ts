/**
 * Java's `String.hashCode()`: `h = 31 * h + c` over the UTF-16 code units, in int32
 * arithmetic.
 *
 * @example
 * ```ts
 * import { javaStringHashCode } from "./group_partition.ts";
 * if (javaStringHashCode("a") !== 97) throw new Error("wrong hash");
 * ```
 */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/**
 * The `__consumer_offsets` partition that owns a group, as Kafka computes it:
 * `Utils.abs(groupId.hashCode()) % partitions`, where `Utils.abs(x)` is `x & 0x7fffffff`.
 *
 * @throws {RangeError} If `partitions` is not a positive integer.
 *
 * @example
 * ```ts
 * import { groupPartition } from "./group_partition.ts";
 * if (groupPartition("", 50) !== 0) throw new Error("wrong partition");
 * ```
 */
export function groupPartition(groupId: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions <= 0) {
    throw new RangeError(`Cannot place group: partition count ${partitions} is not positive`);
  }
  return (javaStringHashCode(groupId) & 0x7fffffff) % partitions;
}
