/** The shape every `tidelog <noun> <verb>` implementation shares. */
import type { ParsedArgs, VerbArgs } from "./_args.ts";
import type { AdminIo } from "./_output.ts";
import type { AdminClient } from "./admin_client.ts";

/** What a running verb gets. */
export interface CommandContext {
  args: ParsedArgs;
  io: AdminIo;
  /** Connects lazily: a verb that never calls it opens no connection. */
  client: AdminClient;
}

/** One verb: its arguments, its usage line and what it does. */
export interface VerbSpec extends VerbArgs {
  /** One-line description for the help text. */
  summary: string;
  /** The flags part of the usage line, when the flags alone do not say it (required choices). */
  usage?: string;
  /**
   * Runs the verb; resolves with the exit code (0, or 1 for a failure already
   * reported). Kafka and connection failures are thrown and reported by the caller.
   */
  run(ctx: CommandContext): Promise<number>;
}
