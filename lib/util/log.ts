/**
 * Structured logging through LogTape. Library code calls {@linkcode getLogger} with a
 * category under "tidelog"; only `main.ts` and test helpers call
 * {@linkcode configureLogging}.
 */
import {
  configure,
  getLogger,
  getTextFormatter,
  jsonLinesFormatter,
  type LogLevel,
  type LogRecord,
  reset,
  type TextFormatter,
} from "@logtape/logtape";

export { getLogger, type LogLevel };

let configured = false;
const encoder = new TextEncoder();

/**
 * Text lines with values as they read (strings unquoted, an error as its message), so a
 * line is one line and reads as a sentence.
 */
const textFormatter: TextFormatter = getTextFormatter({
  value: (v, inspect) =>
    typeof v === "string" ? v : v instanceof Error ? `${v.name}: ${v.message}` : inspect(v),
});

/**
 * Sends "tidelog" records at `level` and above to stderr as one line each: text, or JSON
 * lines (`--log-format json`) for log shippers.
 */
export async function configureLogging(
  level: LogLevel = "info",
  format: "text" | "json" = "text",
): Promise<void> {
  const formatter = format === "json" ? jsonLinesFormatter : textFormatter;
  if (configured) await reset();
  configured = true;
  await configure({
    sinks: {
      // Synchronous stderr writes: stdout stays free for command output, and a line
      // logged just before a crash is not lost in a buffer.
      stderr: (record: LogRecord) => {
        Deno.stderr.writeSync(encoder.encode(formatter(record)));
      },
    },
    loggers: [
      { category: ["tidelog"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
