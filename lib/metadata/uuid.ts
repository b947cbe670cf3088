/** Random Kafka Uuids (topic ids, cluster ids) in Kafka's string form. */
import { uuidToString } from "../protocol/mod.ts";
import { Random } from "../util/random.ts";

/**
 * A random Uuid as Kafka's Uuid.randomUuid() makes it: never the zero id, never the
 * reserved metadata topic id (1), and never one whose string starts with '-' (which
 * command-line tools would read as a flag). The bytes come from `random` (seeded in a
 * simulation, which then replays the same ids; in production {@linkcode Random.fromCrypto},
 * whose whole state comes from the OS).
 */
export function randomUuid(random: Random = Random.fromCrypto()): string {
  for (;;) {
    const bytes = fromRandom(random);
    const s = uuidToString(bytes);
    const reserved = bytes.every((b, i) => b === 0 || (i === 15 && b === 1));
    if (!reserved && !s.startsWith("-")) return s;
  }
}

/** 16 bytes from four `nextU32()` draws, each big-endian. */
function fromRandom(random: Random): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 16; i += 4) view.setUint32(i, random.nextU32());
  return bytes;
}
