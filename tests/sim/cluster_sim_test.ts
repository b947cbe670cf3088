/** The whole-cluster simulation, first shard (see _cluster/sim_test.ts). */
import { simTest } from "./_cluster/sim_test.ts";

simTest(0);
