/**
 * Flag parsing for `tidelog <noun> <verb>`: each verb declares its positionals and flags,
 * the common flags (`--bootstrap`, `--output`, `--help`) are added to all, and anything
 * wrong becomes one {@linkcode AdminUsageError} line (exit code 2).
 */
import { parseArgs } from "node:util";

/** A command line the admin commands cannot run; `message` is the one line to print. */
export class AdminUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AdminUsageError";
  }
}

/** A broker address. */
export interface BrokerAddr {
  host: string;
  port: number;
}

/** How results are printed. */
export type OutputFormat = "table" | "json";

/** One flag of a verb. */
export interface FlagSpec {
  type: "string" | "boolean";
  /** May be given several times (values collected in order). */
  multiple?: boolean;
  /** Placeholder in the usage text ("N", "K=V"); none for booleans. */
  arg?: string;
  doc: string;
}

/** What a verb accepts. */
export interface VerbArgs {
  /** Required positionals, in order (usage names such as "NAME"). */
  positionals: readonly string[];
  flags: Readonly<Record<string, FlagSpec>>;
}

/** A parsed verb command line. */
export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  bootstrap: BrokerAddr[];
  output: OutputFormat;
  help: boolean;
}

/** Flags every verb takes. */
export const COMMON_FLAGS: Readonly<Record<string, FlagSpec>> = {
  bootstrap: {
    type: "string",
    arg: "HOST:PORT,...",
    doc: "brokers to start from (default 127.0.0.1:9092, or TIDELOG_BOOTSTRAP)",
  },
  output: { type: "string", arg: "table|json", doc: "human tables (default) or JSON" },
};

const DEFAULT_BOOTSTRAP = "127.0.0.1:9092";

/**
 * Parses `argv` (the words after the verb) for a verb named `command` ("topic create").
 * `env` supplies TIDELOG_BOOTSTRAP. Throws {@linkcode AdminUsageError}.
 */
export function parseVerbArgs(
  command: string,
  spec: VerbArgs,
  argv: string[],
  env: (name: string) => string | undefined,
): ParsedArgs {
  const flags = { ...COMMON_FLAGS, ...spec.flags };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        ...Object.fromEntries(
          Object.entries(flags).map(([name, f]) => [name, {
            type: f.type,
            multiple: f.multiple ?? false,
          }]),
        ),
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new AdminUsageError(describeParseError(command, err));
  }
  const values = parsed.values as ParsedArgs["values"];
  const help = values.help === true;
  const positionals = parsed.positionals;
  if (!help) {
    const missing = spec.positionals[positionals.length];
    if (missing !== undefined) throw new AdminUsageError(`${command}: missing ${missing}`);
    const extra = positionals[spec.positionals.length];
    if (extra !== undefined) {
      throw new AdminUsageError(`${command}: unexpected argument "${extra}"`);
    }
  }
  const outputRaw = stringFlag(values, "output") ?? "table";
  if (outputRaw !== "table" && outputRaw !== "json") {
    throw new AdminUsageError(`--output: expected table or json, got "${outputRaw}"`);
  }
  const bootstrapRaw = stringFlag(values, "bootstrap") ?? env("TIDELOG_BOOTSTRAP") ??
    DEFAULT_BOOTSTRAP;
  return {
    positionals,
    values,
    bootstrap: parseAddrList("bootstrap", bootstrapRaw),
    output: outputRaw,
    help,
  };
}

function describeParseError(command: string, err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) {
    return `${command}: unknown flag ${option}`;
  }
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option) {
    return `${command}: ${option} needs a value`;
  }
  return `${command}: ${message.split("\n")[0]!.replace(/\. To specify .*$/, "")}`;
}

/** A string flag's last value (a boolean flag or an absent one: undefined). */
export function stringFlag(values: ParsedArgs["values"], name: string): string | undefined {
  const v = values[name];
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.at(-1);
  return undefined;
}

/** Every value of a repeatable string flag. */
export function listFlag(values: ParsedArgs["values"], name: string): string[] {
  const v = values[name];
  if (Array.isArray(v)) return v;
  return typeof v === "string" ? [v] : [];
}

/** An integer flag in `min..max`, or undefined when absent. */
export function intFlag(
  values: ParsedArgs["values"],
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const raw = stringFlag(values, name);
  return raw === undefined ? undefined : parseInteger(`--${name}`, raw, min, max);
}

/** `raw` as an integer in `min..max`; `what` names it in the error. */
export function parseInteger(what: string, raw: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new AdminUsageError(`${what}: expected an integer, got "${raw}"`);
  }
  const n = Number(raw);
  if (n < min || n > max) {
    throw new AdminUsageError(
      max === Number.MAX_SAFE_INTEGER
        ? `${what}: expected at least ${min}, got ${n}`
        : `${what}: ${n} is out of range (${min}..${max})`,
    );
  }
  return n;
}

/** `K=V` pairs of a repeatable flag, in order (a later key wins). */
export function keyValueFlag(values: ParsedArgs["values"], name: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of listFlag(values, name)) {
    const eq = raw.indexOf("=");
    if (eq <= 0) throw new AdminUsageError(`--${name}: expected KEY=VALUE, got "${raw}"`);
    out.set(raw.slice(0, eq), raw.slice(eq + 1));
  }
  return out;
}

/** `host:port,...` (IPv6 hosts in brackets). */
export function parseAddrList(flag: string, raw: string): BrokerAddr[] {
  const parts = raw.split(",").map((p) => p.trim()).filter((p) => p !== "");
  if (parts.length === 0) throw new AdminUsageError(`--${flag}: expected HOST:PORT,...`);
  return parts.map((part) => {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(part);
    if (!m) throw new AdminUsageError(`--${flag}: expected HOST:PORT, got "${part}"`);
    return {
      host: m[1] ?? m[2]!,
      port: parseInteger(`--${flag}`, m[3]!, 1, 65535),
    };
  });
}
