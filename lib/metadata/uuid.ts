/** Kafka Uuids (topic ids, cluster ids) in Kafka's string form: URL-safe base64, no padding. */

/** Encodes 16 bytes as Kafka's Uuid.toString() does. */
export function uuidToString(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

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
