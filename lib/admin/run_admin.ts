/**
 * `tidelog <noun> <verb> ...`: finds the verb, parses its flags, runs it and turns the
 * outcome into an exit code and at most one line on stderr: 0 done, 1 failed (a Kafka
 * error code, or no broker reachable), 2 a bad command line.
 */
import { AssertionError } from "../util/assert.ts";
import { AdminUsageError, COMMON_FLAGS, type FlagSpec, parseVerbArgs } from "./_args.ts";
import type { VerbSpec } from "./_command.ts";
import { type AdminIo, denoIo, OutputClosedError } from "./_output.ts";
import { AdminClient, describeNetworkError, KafkaCallError } from "./admin_client.ts";
import { CLUSTER_VERBS } from "./cluster_commands.ts";
import { CONSUME_COMMAND } from "./consume_command.ts";
import { GROUP_VERBS } from "./group_commands.ts";
import { PRODUCE_COMMAND } from "./produce_command.ts";
import { TOPIC_VERBS } from "./topic_commands.ts";

/** Nouns with verbs, and the two that are commands by themselves. */
const NOUNS: Readonly<Record<string, Readonly<Record<string, VerbSpec>> | VerbSpec>> = {
  topic: TOPIC_VERBS,
  group: GROUP_VERBS,
  produce: PRODUCE_COMMAND,
  consume: CONSUME_COMMAND,
  cluster: CLUSTER_VERBS,
};

/** The first words `tidelog` hands to {@linkcode runAdmin}. */
export const ADMIN_NOUNS: readonly string[] = Object.keys(NOUNS);

/** Whether `word` starts an admin command. */
export function isAdminNoun(word: string): boolean {
  return Object.hasOwn(NOUNS, word);
}

function isVerbSpec(x: Readonly<Record<string, VerbSpec>> | VerbSpec): x is VerbSpec {
  return typeof (x as VerbSpec).run === "function";
}

function flagUsage(name: string, f: FlagSpec): string {
  return `--${name}${f.arg ? ` ${f.arg}` : ""}`;
}

/** The usage line of one verb: `tidelog topic create NAME [--partitions N] ...`. */
function synopsis(command: string, spec: VerbSpec): string {
  const flags = spec.usage !== undefined
    ? [spec.usage]
    : Object.entries(spec.flags).map(([name, f]) =>
      `[${flagUsage(name, f)}]${f.multiple ? "..." : ""}`
    );
  return [`tidelog ${command}`, ...spec.positionals, ...flags].join(" ");
}

/** Detailed help of one verb. */
function verbHelp(command: string, spec: VerbSpec): string {
  const flags = Object.entries({ ...spec.flags, ...COMMON_FLAGS }).map(([name, f]) =>
    `  ${flagUsage(name, f).padEnd(28)} ${f.doc}`
  );
  return [
    `Usage: ${synopsis(command, spec)}`,
    "",
    `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`,
    "",
    "Flags:",
    ...flags,
  ].join("\n");
}

function nounHelp(noun: string): string {
  const entry = NOUNS[noun]!;
  if (isVerbSpec(entry)) return verbHelp(noun, entry);
  return [
    `Usage: tidelog ${noun} <verb> [flags]   (tidelog ${noun} <verb> --help for details)`,
    "",
    ...Object.entries(entry).map(([verb, spec]) =>
      `  ${verb.padEnd(14)} ${spec.summary}\n      ${synopsis(`${noun} ${verb}`, spec)}`
    ),
  ].join("\n");
}

/** The admin commands' part of `tidelog --help`. */
export function adminUsage(): string {
  const lines: string[] = [];
  for (const [noun, entry] of Object.entries(NOUNS)) {
    if (isVerbSpec(entry)) lines.push(`  ${synopsis(noun, entry)}`);
    else {
      for (const [verb, spec] of Object.entries(entry)) {
        lines.push(`  ${synopsis(`${noun} ${verb}`, spec)}`);
      }
    }
  }
  return [
    "Admin commands (over the Kafka protocol; tidelog <noun> [<verb>] --help for details):",
    ...lines,
    "",
    "  Every admin command takes --bootstrap HOST:PORT,... (default 127.0.0.1:9092, or",
    "  TIDELOG_BOOTSTRAP) and --output table|json. consume --format: %k key, %v value,",
    "  %p partition, %o offset, %t timestamp (ms), %h headers, %% a percent sign.",
    "  Exit codes: 0 done, 1 failed (Kafka error or unreachable cluster), 2 bad command line.",
    "  `tidelog status [--addrs ...]` is `tidelog cluster status`.",
  ].join("\n");
}

/**
 * Runs `tidelog <argv...>` where `argv[0]` is an admin noun, and resolves with the exit
 * code. Output goes to `io` (the process's streams by default).
 */
export async function runAdmin(argv: readonly string[], io: AdminIo = denoIo()): Promise<number> {
  const [noun, ...rest] = argv;
  const entry = noun === undefined ? undefined : NOUNS[noun];
  if (noun === undefined || entry === undefined) {
    return usageFailure(io, `unknown command "${noun ?? ""}"`, "tidelog help");
  }
  let spec: VerbSpec;
  let command: string;
  let words: string[];
  if (isVerbSpec(entry)) {
    spec = entry;
    command = noun;
    words = rest;
  } else {
    const [verb, ...more] = rest;
    if (verb === "--help" || verb === "-h" || verb === "help") {
      io.stdout(nounHelp(noun) + "\n");
      return 0;
    }
    const verbs = Object.keys(entry).join(", ");
    if (verb === undefined || verb.startsWith("-")) {
      return usageFailure(io, `${noun}: missing verb (${verbs})`, `tidelog ${noun} --help`);
    }
    const found = entry[verb];
    if (found === undefined) {
      return usageFailure(
        io,
        `${noun}: unknown verb "${verb}" (${verbs})`,
        `tidelog ${noun} --help`,
      );
    }
    spec = found;
    command = `${noun} ${verb}`;
    words = more;
  }
  let args;
  try {
    args = parseVerbArgs(command, spec, words, io.env);
  } catch (err) {
    if (!(err instanceof AdminUsageError)) throw err;
    return usageFailure(io, err.message, `tidelog ${command} --help`);
  }
  if (args.help) {
    io.stdout(verbHelp(command, spec) + "\n");
    return 0;
  }
  const subject = [command, args.positionals[0]].filter((x) => x !== undefined).join(" ");
  const client = new AdminClient(args.bootstrap, `tidelog-${noun}`);
  try {
    return await spec.run({ args, io, client });
  } catch (err) {
    if (err instanceof AdminUsageError) {
      return usageFailure(io, err.message, `tidelog ${command} --help`);
    }
    if (err instanceof OutputClosedError) return 0;
    if (err instanceof AssertionError) throw err;
    const reason = err instanceof KafkaCallError ? err.message : describeNetworkError(err);
    io.stderr(`tidelog: ${subject}: ${reason}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

function usageFailure(io: AdminIo, message: string, help: string): number {
  io.stderr(`tidelog: ${message} (see ${help})\n`);
  return 2;
}
