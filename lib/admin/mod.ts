/**
 * @module
 * The admin commands, `tidelog <noun> <verb>` (DESIGN §2 `admin/`): `topic
 * create|list|describe|alter-config|delete`, `group list|describe|reset-offsets|delete`,
 * `produce`, `consume` (alone or as a classic-protocol group member) and `cluster
 * status|metadata`. They are Kafka clients: everything goes over the Kafka protocol
 * (`client/` connections, `protocol/` messages) to whatever brokers `--bootstrap` leads
 * to, so they work against any node, local or not, and never reach into a running node's
 * internals. Output is human tables or `--output json`; exit codes 0 done, 1 failed
 * (a Kafka error code or no reachable broker, one line on stderr naming it), 2 a bad
 * command line.
 *
 * Exports: {@linkcode runAdmin} (what `main.ts` runs for an admin noun),
 * {@linkcode isAdminNoun} and {@linkcode adminUsage} (for `lib/cli.ts` and `--help`),
 * {@linkcode runStatus} (`tidelog status`, the alias of `cluster status`), and the
 * reusable pieces {@linkcode AdminClient} and {@linkcode murmur2}.
 *
 * Non-obvious:
 * 1. Topic and config changes go to a bootstrap broker, not to the controller: Tidelog
 *    forwards them and answers once its own metadata shows the change, so the next
 *    command sees it even on another path.
 * 2. `group list` asks every broker: ListGroups answers only the groups a broker
 *    coordinates.
 * 3. `produce` delivers at least once (retries after a leader change may duplicate).
 */
export { ADMIN_NOUNS, adminUsage, isAdminNoun, runAdmin } from "./run_admin.ts";
export { AdminClient, KafkaCallError } from "./admin_client.ts";
export { type AdminIo, denoIo } from "./_output.ts";
export { murmur2, partitionForKey } from "./_records.ts";
export { compileFormat } from "./_format.ts";
export { LineSplitter } from "./produce_command.ts";
export { type NodeStatus, probeCluster, runStatus } from "./cluster_status.ts";
