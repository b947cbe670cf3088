package dev.tidelog.interop;

import static dev.tidelog.interop.Util.check;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;

/**
 * A transaction held open while the caller looks at it (with Kafka's tools, or across a
 * leader's death): a transactional producer writes {@code records} records to one partition,
 * flushes, prints {@code OPEN} and waits; on the stdin line {@code COMMIT} or {@code ABORT}
 * it ends the transaction so and prints {@code COMMITTED} or {@code ABORTED}. When stdin
 * ends (the caller ends it once the markers are written) it reads the partition back, and
 * its summary gives what read_committed and read_uncommitted saw.
 *
 * <p>Args: bootstrap transactionalId topic partition records
 */
public final class HeldTransaction {
  public static void main(String[] args) {
    Util.main("HeldTransaction", () -> run(args[0], args[1], args[2],
        Integer.parseInt(args[3]), Integer.parseInt(args[4])));
  }

  static Map<String, Object> run(String bootstrap, String txid, String topic, int partition,
      int records) throws Exception {
    Properties p = Util.producerProps(bootstrap, "held-" + txid);
    p.put("transactional.id", txid);
    BufferedReader stdin =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String outcome = null;
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      producer.initTransactions();
      producer.beginTransaction();
      for (int i = 0; i < records; i++) {
        producer.send(new ProducerRecord<>(topic, partition, "k" + i, "held-" + i));
      }
      producer.flush();
      System.out.println("OPEN");
      System.out.flush();
      for (String line; (line = stdin.readLine()) != null;) {
        if (outcome != null) continue;
        if (line.equals("COMMIT")) {
          producer.commitTransaction();
          outcome = "COMMITTED";
        } else if (line.equals("ABORT")) {
          producer.abortTransaction();
          outcome = "ABORTED";
        } else {
          continue;
        }
        Util.log("%s", outcome);
        System.out.println(outcome);
        System.out.flush();
      }
    }
    check(outcome != null, "stdin ended before COMMIT or ABORT");
    List<TopicPartition> tps = List.of(new TopicPartition(topic, partition));
    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("outcome", outcome);
    summary.put("committedRead", Util.readAll(bootstrap, tps, 30_000, "read_committed").size());
    summary.put("uncommittedRead",
        Util.readAll(bootstrap, tps, 30_000, "read_uncommitted").size());
    return summary;
  }
}
