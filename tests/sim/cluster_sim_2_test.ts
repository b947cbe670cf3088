/** The whole-cluster simulation, second shard (see _cluster/sim_test.ts). */
import { simTest } from "./_cluster/sim_test.ts";

simTest(1);
