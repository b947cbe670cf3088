/**
 * Structured logging through LogTape. Library code calls {@linkcode getLogger} with a
 * category under "tidelog"; only `main.ts` and test helpers call
 * {@linkcode configureLogging}.
 */
import {
  configure,
  defaultTextFormatter,
  getLogger,
  type LogLevel,
  type LogRecord,
  reset,
} from "@logtape/logtape";

export { getLogger, type LogLevel };

let configured = false;
const encoder = new TextEncoder();

/** Sends "tidelog" records at `level` and above to stderr as one line each. */
export async function configureLogging(level: LogLevel = "info"): Promise<void> {
  if (configured) await reset();
  configured = true;
  await configure({
    sinks: {
      // Synchronous stderr writes: stdout stays free for command output, and a line
      // logged just before a crash is not lost in a buffer.
      stderr: (record: LogRecord) => {
        Deno.stderr.writeSync(encoder.encode(defaultTextFormatter(record)));
      },
    },
    loggers: [
      { category: ["tidelog"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
