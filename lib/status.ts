/**
 * `tidelog status`: kept as the alias of `tidelog cluster status`, which lives in
 * `admin/cluster_status.ts` (one line per node: role, term, controller, fencing, commit).
 */
export { runStatus } from "./admin/mod.ts";
