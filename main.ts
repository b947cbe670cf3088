/**
 * Tidelog entry point: parses the command line and runs a node until SIGINT/SIGTERM, or
 * runs an admin command (`tidelog <noun> <verb>`, lib/admin).
 * Exit codes: 0 clean stop, 1 start-up failure (or a failed admin command), 2 bad command line.
 */
import { adminUsage, runAdmin } from "./lib/admin/mod.ts";
import { parseCommandLine, usage, UsageError, VERSION } from "./lib/cli.ts";
import { Node, StartupError } from "./lib/node.ts";
import { runStatus } from "./lib/status.ts";
import { configureLogging, getLogger } from "./lib/util/log.ts";

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  stream.writeSync(new TextEncoder().encode(text + "\n"));
}

async function main(): Promise<number> {
  let command;
  try {
    command = parseCommandLine(
      Deno.args,
      (name) => Deno.env.get(name),
      (path) => Deno.readTextFileSync(path),
    );
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    write(Deno.stderr, `tidelog: ${err.message} (see tidelog --help)`);
    return 2;
  }
  if (command.kind === "help") {
    write(Deno.stdout, `${usage()}\n\n${adminUsage()}`);
    return 0;
  }
  if (command.kind === "version") {
    write(Deno.stdout, `tidelog ${VERSION}`);
    return 0;
  }
  if (command.kind === "status") return await runStatus(command.options);
  if (command.kind === "admin") return await runAdmin(command.args);
  await configureLogging(command.options.logLevel, command.options.logFormat);
  const log = getLogger(["tidelog", "main"]);
  if (command.options.unusedConfigKeys.length > 0) {
    log.info("Keys of the config file Tidelog does not use: {keys}", {
      keys: command.options.unusedConfigKeys.join(", "),
    });
  }
  // A rejection nobody handles is a bug: record it in the node's log before Deno exits.
  globalThis.addEventListener("unhandledrejection", (e) => {
    const err = e.reason as Error;
    log.fatal("Unhandled failure, exiting: {error}", { error: String(err), stack: err?.stack });
  });
  let node: Node;
  try {
    node = await Node.start(command.options, {
      // A failed log or Raft storage: exit, as Kafka halts a broker whose log dir failed.
      onFatal: () => Deno.exit(1),
    });
  } catch (err) {
    if (!(err instanceof StartupError)) throw err;
    log.error("{message}", { message: err.message });
    write(Deno.stderr, `tidelog: ${err.message}`);
    return 1;
  }
  const { promise: stopSignal, resolve } = Promise.withResolvers<string>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => resolve(signal));
  }
  const signal = await stopSignal;
  log.info("Received {signal}; shutting down", { signal });
  try {
    await node.stop();
  } catch (err) {
    // Logged by the node: what it had not synced may be lost, as after a crash.
    write(Deno.stderr, `tidelog: shutdown failed: ${(err as Error).message}`);
    return 1;
  }
  return 0;
}

Deno.exit(await main());
