/**
 * `consume --format FMT`: kcat-like placeholders, one output line per record.
 *
 * `%k` key, `%v` value, `%p` partition, `%o` offset, `%t` timestamp (ms since the epoch),
 * `%h` headers (`k=v,k2=v2`), `%%` a percent sign; `\n`, `\t` and `\\` are escapes. Keys,
 * values and headers print as UTF-8 text; a null key or value prints as nothing.
 */
import { AdminUsageError } from "./_args.ts";
import type { ConsumedRecord } from "./_records.ts";

/** The default: the value alone. */
export const DEFAULT_FORMAT = "%v";

/** A placeholder's letter. */
type Field = "k" | "v" | "p" | "o" | "t" | "h";
type Part = { literal: true; text: string } | { literal: false; field: Field };

/** A compiled `--format`. */
export interface RecordFormat {
  /** The record's line, newline included. */
  render(record: ConsumedRecord): string;
}

const PLACEHOLDERS = new Set(["k", "v", "p", "o", "t", "h"]);
const ESCAPES: Record<string, string> = { n: "\n", t: "\t", "\\": "\\" };

const decoder = new TextDecoder();

function text(bytes: Uint8Array | null): string {
  return bytes === null ? "" : decoder.decode(bytes);
}

/** Compiles `fmt`; throws {@linkcode AdminUsageError} for an unknown placeholder or escape. */
export function compileFormat(fmt: string): RecordFormat {
  const parts: Part[] = [];
  let literal = "";
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    const next = fmt[i + 1];
    if (c === "%" || c === "\\") {
      if (next === undefined) {
        throw new AdminUsageError(`--format: "${fmt}" ends with a lone ${c}`);
      }
      i++;
      if (c === "%" && next === "%") {
        literal += "%";
      } else if (c === "%" && PLACEHOLDERS.has(next)) {
        if (literal !== "") parts.push({ literal: true, text: literal });
        literal = "";
        parts.push({ literal: false, field: next as Field });
      } else if (c === "\\" && ESCAPES[next] !== undefined) {
        literal += ESCAPES[next];
      } else {
        throw new AdminUsageError(
          `--format: unknown ${c}${next} (use %k %v %p %o %t %h %%, \\n \\t \\\\)`,
        );
      }
    } else {
      literal += c;
    }
  }
  if (literal !== "") parts.push({ literal: true, text: literal });
  return {
    render(r) {
      let out = "";
      for (const part of parts) {
        if (part.literal) {
          out += part.text;
          continue;
        }
        switch (part.field) {
          case "k":
            out += text(r.key);
            break;
          case "v":
            out += text(r.value);
            break;
          case "p":
            out += String(r.partition);
            break;
          case "o":
            out += String(r.offset);
            break;
          case "t":
            out += String(r.timestampMs);
            break;
          case "h":
            out += r.headers.map((h) => `${h.key}=${text(h.value)}`).join(",");
            break;
        }
      }
      return out + "\n";
    },
  };
}

/** A record as one JSON object for `--output json` (stable keys; text as UTF-8). */
export function recordJson(topic: string, r: ConsumedRecord): Record<string, unknown> {
  return {
    topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestampMs,
    key: r.key === null ? null : text(r.key),
    value: r.value === null ? null : text(r.value),
    headers: r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : text(h.value) })),
  };
}
