package dev.tidelog.interop;

import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The load generator of the transactional throughput benchmark (tests/bench/txn_bench.ts):
 * Kafka's own producer, with exact control of the records per transaction, which
 * kafka-producer-perf-test lacks (its {@code --transaction-duration-ms} commits by time).
 *
 * <p>Each case runs {@code producers} threads, each with its own producer, for a warm-up and
 * then a measured window, against its own topic (created here, {@code partitions}
 * partitions, replication factor 1). Records are {@code recordSize} random bytes (no key)
 * sent round-robin over the partitions, so a transaction of 10 records touches every
 * partition of a 4-partition topic, as a consume-transform-produce stage does. Cases:
 * <ul>
 *   <li>{@code txn:K}: transactional producers (acks=all, idempotent, as transactions
 *       require), K records per transaction, each transaction committed before the next
 *       begins; counted when its commit returns inside the window;
 *   <li>{@code plain}: the same producer settings without a transactional id (idempotent,
 *       acks=all), records counted when acknowledged inside the window.
 * </ul>
 * One JSON line per case on stdout: records, transactions, seconds, records/s, MB/s,
 * transactions/s, and the p50/p99 of a transaction's duration (begin to commit returned).
 *
 * <p>Args: bootstrap topicPrefix partitions recordSize producers warmupSeconds seconds
 * case...
 */
public final class TxnPerf {
  private TxnPerf() {}

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String prefix = args[1];
    int partitions = Integer.parseInt(args[2]);
    int recordSize = Integer.parseInt(args[3]);
    int producers = Integer.parseInt(args[4]);
    long warmupMs = (long) (Double.parseDouble(args[5]) * 1000);
    long measureMs = (long) (Double.parseDouble(args[6]) * 1000);
    int code = 0;
    try {
      for (int i = 7; i < args.length; i++) {
        String c = args[i];
        int perTxn = c.equals("plain") ? 0 : Integer.parseInt(c.substring("txn:".length()));
        String topic = prefix + "-" + c.replace(':', '-');
        createTopic(bootstrap, topic, partitions);
        Map<String, Object> out = new Case(bootstrap, topic, partitions, recordSize, producers,
            perTxn).run(warmupMs, measureMs);
        out.put("case", c);
        System.out.println(Util.json(out));
        System.out.flush();
      }
    } catch (Throwable e) {
      System.err.println("FAIL TxnPerf: " + e);
      e.printStackTrace();
      code = 1;
    }
    System.err.flush();
    Runtime.getRuntime().halt(code);
  }

  static void createTopic(String bootstrap, String topic, int partitions) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    try (Admin admin = Admin.create(p)) {
      try {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException)) throw e;
      }
      // Until every partition has a leader that knows it (CreateTopics may answer first).
      long deadline = System.currentTimeMillis() + 60_000;
      for (;;) {
        try {
          var d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
          if (d.partitions().size() == partitions
              && d.partitions().stream().allMatch(x -> x.leader() != null)) {
            return;
          }
        } catch (ExecutionException e) {
          if (System.currentTimeMillis() > deadline) throw e;
        }
        if (System.currentTimeMillis() > deadline) throw new TimeoutException(topic + ": leaders");
        Util.sleep(100);
      }
    }
  }

  static final class Case {
    final String bootstrap;
    final String topic;
    final int partitions;
    final int recordSize;
    final int producers;
    /** Records per transaction; 0: not transactional. */
    final int perTxn;
    final AtomicLong records = new AtomicLong();
    final AtomicLong txns = new AtomicLong();
    final List<Long> txnNanos = Collections.synchronizedList(new ArrayList<>());
    volatile long windowStart = Long.MAX_VALUE;
    volatile long windowEnd = Long.MAX_VALUE;
    volatile boolean stop = false;

    Case(String bootstrap, String topic, int partitions, int recordSize, int producers,
        int perTxn) {
      this.bootstrap = bootstrap;
      this.topic = topic;
      this.partitions = partitions;
      this.recordSize = recordSize;
      this.producers = producers;
      this.perTxn = perTxn;
    }

    boolean inWindow(long now) {
      return now >= windowStart && now < windowEnd;
    }

    Properties props(int thread) {
      Properties p = new Properties();
      p.put("bootstrap.servers", bootstrap);
      p.put("client.id", topic + "-" + thread);
      p.put("key.serializer", ByteArraySerializer.class.getName());
      p.put("value.serializer", ByteArraySerializer.class.getName());
      p.put("acks", "all");
      p.put("enable.idempotence", "true");
      // The batching of the other benchmarks (~64 KiB batches) for both kinds of producer.
      p.put("batch.size", "65536");
      p.put("linger.ms", "5");
      p.put("buffer.memory", Long.toString(64L << 20));
      if (perTxn > 0) p.put("transactional.id", topic + "-" + thread);
      return p;
    }

    void produce(int thread) {
      byte[] value = new byte[recordSize];
      new Random(thread).nextBytes(value);
      try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props(thread))) {
        int seq = thread;
        if (perTxn == 0) {
          while (!stop) {
            producer.send(new ProducerRecord<>(topic, seq++ % partitions, null, value),
                (md, e) -> {
                  if (e == null && inWindow(System.nanoTime())) records.incrementAndGet();
                });
          }
          producer.flush();
          return;
        }
        producer.initTransactions();
        while (!stop) {
          long began = System.nanoTime();
          producer.beginTransaction();
          for (int i = 0; i < perTxn; i++) {
            producer.send(new ProducerRecord<>(topic, seq++ % partitions, null, value));
          }
          producer.commitTransaction();
          long now = System.nanoTime();
          if (inWindow(now)) {
            txns.incrementAndGet();
            records.addAndGet(perTxn);
            txnNanos.add(now - began);
          }
        }
      }
    }

    Map<String, Object> run(long warmupMs, long measureMs) throws Exception {
      ExecutorService pool = Executors.newFixedThreadPool(producers);
      List<Future<?>> running = new ArrayList<>();
      for (int t = 0; t < producers; t++) {
        int thread = t;
        running.add(pool.submit(() -> {
          produce(thread);
          return null;
        }));
      }
      long start = System.nanoTime() + warmupMs * 1_000_000;
      windowStart = start;
      windowEnd = start + measureMs * 1_000_000;
      while (System.nanoTime() < windowEnd) {
        for (Future<?> f : running) {
          if (f.isDone()) f.get(); // a producer that failed fails the case now
        }
        Thread.sleep(50);
      }
      stop = true;
      for (Future<?> f : running) f.get(120, TimeUnit.SECONDS);
      pool.shutdown();
      double seconds = measureMs / 1000.0;
      long[] sorted = txnNanos.stream().mapToLong(Long::longValue).sorted().toArray();
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("producers", producers);
      out.put("recordsPerTxn", perTxn);
      out.put("records", records.get());
      out.put("transactions", txns.get());
      out.put("seconds", seconds);
      out.put("recordsPerSec", records.get() / seconds);
      out.put("mbPerSec", records.get() * (double) recordSize / 1e6 / seconds);
      out.put("txnsPerSec", txns.get() / seconds);
      out.put("txnP50Ms", quantileMs(sorted, 0.5));
      out.put("txnP99Ms", quantileMs(sorted, 0.99));
      return out;
    }
  }

  static double quantileMs(long[] sorted, double q) {
    if (sorted.length == 0) return -1;
    return sorted[Math.min(sorted.length - 1, (int) (q * sorted.length))] / 1e6;
  }
}
