/**
 * The admin commands' view of the process: stdout/stderr, stdin, the terminal and
 * interrupts behind one interface (so the commands run in tests without a process), plus
 * table and JSON rendering.
 */

/** What a command may touch outside the Kafka connection. */
export interface AdminIo {
  /** Writes `text` to stdout as is. */
  stdout(text: string): void;
  /** Writes `text` to stderr as is. */
  stderr(text: string): void;
  /** The standard input, as bytes. */
  stdin(): ReadableStream<Uint8Array>;
  /** Whether stderr is a terminal (progress bars go there only then). */
  stderrIsTerminal(): boolean;
  /** Calls `listener` on SIGINT or SIGTERM; returns a function that stops listening. */
  onInterrupt(listener: () => void): () => void;
  /** An environment variable. */
  env(name: string): string | undefined;
}

/** Whoever read our stdout went away (`tidelog consume ... | head`): stop, no failure. */
export class OutputClosedError extends Error {
  constructor() {
    super("Standard output was closed");
    this.name = "OutputClosedError";
  }
}

const encoder = new TextEncoder();

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}

/** The real process: Deno's standard streams, signals and environment. */
export function denoIo(): AdminIo {
  return {
    stdout(text) {
      try {
        writeAll(Deno.stdout, text);
      } catch (err) {
        if (err instanceof Deno.errors.BrokenPipe) throw new OutputClosedError();
        throw err;
      }
    },
    stderr: (text) => writeAll(Deno.stderr, text),
    stdin: () => Deno.stdin.readable,
    stderrIsTerminal: () => Deno.stderr.isTerminal(),
    onInterrupt(listener) {
      const signals = ["SIGINT", "SIGTERM"] as const;
      for (const s of signals) Deno.addSignalListener(s, listener);
      return () => {
        for (const s of signals) Deno.removeSignalListener(s, listener);
      };
    },
    env: (name) => Deno.env.get(name),
  };
}

/**
 * `rows` under `header`, each column padded to its widest cell, two spaces apart (the last
 * column is not padded). One string per line, no trailing newline.
 */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const all = [header, ...rows];
  const widths: number[] = [];
  for (const row of all) {
    row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return all.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)).join("  ")
      .trimEnd()
  ).join("\n");
}

/** `value` as indented JSON (bigints as numbers when safe), with a final newline. */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, jsonReplacer, 2) + "\n";
}

/** `value` as one line of JSON (JSON Lines), with a final newline. */
export function formatJsonLine(value: unknown): string {
  return JSON.stringify(value, jsonReplacer) + "\n";
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? Number(value) : value;
}
