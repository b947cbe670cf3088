package dev.tidelog.interop;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.Callable;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

/**
 * Shared helpers of the interop programs: client configs, checks, and the run-and-report
 * wrapper. A program is {@code main(args) { Util.main("Name", () -> summary) }}: it prints
 * progress to stderr, its one-line JSON summary to stdout, and exits 0; a failed check
 * ({@link #check}) or any exception prints {@code FAIL Name: why} to stderr and exits 1.
 */
final class Util {
  private Util() {}

  static final long START = System.currentTimeMillis();

  /** A check of the program failed: the broker (or the client) did not do what Kafka does. */
  static final class CheckFailed extends RuntimeException {
    CheckFailed(String message) {
      super(message);
    }
  }

  static void check(boolean ok, String format, Object... args) {
    if (!ok) throw new CheckFailed(String.format(format, args));
  }

  static void log(String format, Object... args) {
    System.err.printf("[%6.2fs] %s%n", (System.currentTimeMillis() - START) / 1000.0,
        String.format(format, args));
    System.err.flush();
  }

  /** Runs {@code body}, prints its summary (plus "ok": true) as one JSON line, and exits. */
  static void main(String name, Callable<Map<String, Object>> body) {
    int code;
    try {
      Map<String, Object> summary = new LinkedHashMap<>();
      summary.put("program", name);
      summary.put("ok", true);
      summary.putAll(body.call());
      summary.put("seconds", (System.currentTimeMillis() - START) / 1000.0);
      System.out.println(json(summary));
      code = 0;
    } catch (CheckFailed e) {
      System.err.println("FAIL " + name + ": " + e.getMessage());
      code = 1;
    } catch (Throwable e) {
      System.err.println("FAIL " + name + ": unexpected " + e);
      e.printStackTrace();
      code = 1;
    }
    System.out.flush();
    System.err.flush();
    // Client threads (or a consumer never closed after a failure) must not keep the JVM up.
    Runtime.getRuntime().halt(code);
  }

  static Properties producerProps(String bootstrap, String clientId) {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("client.id", clientId);
    p.put("key.serializer", StringSerializer.class.getName());
    p.put("value.serializer", StringSerializer.class.getName());
    return p;
  }

  /** A consumer without auto commit; {@code groupId} null for assign-only consumers. */
  static Properties consumerProps(String bootstrap, String clientId, String groupId) {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("client.id", clientId);
    if (groupId != null) p.put("group.id", groupId);
    p.put("enable.auto.commit", "false");
    p.put("auto.offset.reset", "earliest");
    p.put("key.deserializer", StringDeserializer.class.getName());
    p.put("value.deserializer", StringDeserializer.class.getName());
    // Short group timings (the broker's group.min.session.timeout.ms is 6000 by default).
    p.put("session.timeout.ms", "6000");
    p.put("heartbeat.interval.ms", "1000");
    // Also the classic protocol's rebalance timeout: how long a rebalance waits for members.
    p.put("max.poll.interval.ms", "30000");
    return p;
  }

  static List<TopicPartition> partitions(String topic, int count) {
    List<TopicPartition> tps = new ArrayList<>();
    for (int i = 0; i < count; i++) tps.add(new TopicPartition(topic, i));
    return tps;
  }

  /**
   * Reads {@code tps} from the beginning with an assign-only consumer until each position
   * reaches its end offset (taken once, at the start), or fails after {@code timeoutMs}.
   */
  static List<ConsumerRecord<String, String>> readAll(
      String bootstrap, List<TopicPartition> tps, long timeoutMs) {
    return readAll(bootstrap, tps, timeoutMs, "read_uncommitted");
  }

  /**
   * {@link #readAll(String, List, long)} with an {@code isolation.level}: under
   * read_committed the end offsets are the last stable offsets, so an open transaction
   * stops the read where it began.
   */
  static List<ConsumerRecord<String, String>> readAll(
      String bootstrap, List<TopicPartition> tps, long timeoutMs, String isolationLevel) {
    Properties props = consumerProps(bootstrap, "reader", null);
    props.put("isolation.level", isolationLevel);
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props)) {
      c.assign(tps);
      c.seekToBeginning(tps);
      Map<TopicPartition, Long> end = c.endOffsets(tps);
      List<ConsumerRecord<String, String>> out = new ArrayList<>();
      long deadline = System.currentTimeMillis() + timeoutMs;
      while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
        check(System.currentTimeMillis() < deadline,
            "reading back timed out after %d ms: positions %s, end offsets %s", timeoutMs,
            positions(c, tps), end);
        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) out.add(r);
      }
      return out;
    }
  }

  static Map<TopicPartition, Long> positions(Consumer<?, ?> c, Collection<TopicPartition> tps) {
    Map<TopicPartition, Long> m = new TreeMap<>(Util::compare);
    for (TopicPartition tp : tps) m.put(tp, c.position(tp));
    return m;
  }

  static int compare(TopicPartition a, TopicPartition b) {
    int t = a.topic().compareTo(b.topic());
    return t != 0 ? t : Integer.compare(a.partition(), b.partition());
  }

  /** Partition numbers, sorted (for messages and assignment comparisons). */
  static List<Integer> numbers(Collection<TopicPartition> tps) {
    return tps.stream().map(TopicPartition::partition).sorted().toList();
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RuntimeException(e);
    }
  }

  /** Minimal JSON for summaries: maps, collections, numbers, booleans, strings, null. */
  static String json(Object v) {
    if (v == null) return "null";
    if (v instanceof Number || v instanceof Boolean) return v.toString();
    if (v instanceof Map<?, ?> m) {
      StringJoiner j = new StringJoiner(",", "{", "}");
      m.forEach((k, x) -> j.add(json(String.valueOf(k)) + ":" + json(x)));
      return j.toString();
    }
    if (v instanceof Collection<?> c) {
      StringJoiner j = new StringJoiner(",", "[", "]");
      c.forEach(x -> j.add(json(x)));
      return j.toString();
    }
    StringBuilder b = new StringBuilder("\"");
    for (char ch : v.toString().toCharArray()) {
      switch (ch) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        default -> {
          if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
          else b.append(ch);
        }
      }
    }
    return b.append('"').toString();
  }
}
