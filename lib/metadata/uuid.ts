/** Random Kafka Uuids (topic ids, cluster ids) in Kafka's string form. */
import { uuidToString } from "../protocol/mod.ts";

/**
 * A random Uuid as Kafka's Uuid.randomUuid() makes it: never the zero id, never the
 * reserved metadata topic id (1), and never one whose string starts with '-' (which
 * command-line tools would read as a flag).
 */
export function randomUuid(): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const s = uuidToString(bytes);
    const reserved = bytes.every((b, i) => b === 0 || (i === 15 && b === 1));
    if (!reserved && !s.startsWith("-")) return s;
  }
}
