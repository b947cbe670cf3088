package dev.tidelog.interop;

import static dev.tidelog.interop.Util.check;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;

/**
 * A leader killed under an idempotent acks=all producer and a group consumer (the caller
 * does the killing). The producer sends numbered records round-robin over the partitions;
 * after {@link #READY_AFTER} acknowledgements (and half as many records read by the group
 * consumer) it prints {@code READY} on stdout and goes on, the caller kills a partition leader (kill -9) and writes {@code KILLED} on stdin, and the
 * producer stops once every partition has {@link #AFTER_KILL} acknowledgements for records
 * sent after that. Then:
 * <ul>
 *   <li>no send failed, and the log holds exactly the acknowledged records, each once, at
 *       the offset its acknowledgement gave;
 *   <li>the group consumer, running throughout, read every offset, without a gap, and
 *       every record it read is the one the log holds there (nothing read was lost).
 * </ul>
 *
 * <p>Args: bootstrap topic partitions
 */
public final class FailoverProducerConsumer {
  private static final int READY_AFTER = 1500;
  private static final int AFTER_KILL = 300;
  private static final int MAX_IN_FLIGHT = 200;

  private final String bootstrap;
  private final String topic;
  private final int partitions;
  /** seq → "partition@offset" of each acknowledged send. */
  private final Map<Integer, String> acked = new ConcurrentHashMap<>();
  private final List<String> failures = Collections.synchronizedList(new ArrayList<>());
  /** Acknowledgements per partition of records sent after KILLED arrived. */
  private final AtomicInteger[] ackedAfterKill;
  /** Per partition, the longest time between two acknowledgements (ms). */
  private final long[] longestAckGap;
  private final long[] lastAck;
  private final CountDownLatch killed = new CountDownLatch(1);
  private volatile String killedWhat = "";
  private volatile boolean producing = true;

  public static void main(String[] args) {
    Util.main("FailoverProducerConsumer",
        () -> new FailoverProducerConsumer(args[0], args[1], Integer.parseInt(args[2])).run());
  }

  FailoverProducerConsumer(String bootstrap, String topic, int partitions) {
    this.bootstrap = bootstrap;
    this.topic = topic;
    this.partitions = partitions;
    ackedAfterKill = new AtomicInteger[partitions];
    for (int i = 0; i < partitions; i++) ackedAfterKill[i] = new AtomicInteger();
    longestAckGap = new long[partitions];
    lastAck = new long[partitions];
  }

  /** The group consumer running through the failover. */
  final class LiveConsumer implements Runnable, ConsumerRebalanceListener {
    final KafkaConsumer<String, String> consumer;
    /** "p@o" → value of everything read (a re-read must match). */
    final Map<String, String> seen = new HashMap<>();
    final Map<TopicPartition, Long> next = new HashMap<>();
    final Map<TopicPartition, Long> committed = new HashMap<>();
    /** Offsets to stop at, once the producer is done. */
    volatile Map<TopicPartition, Long> stopAt = null;
    volatile Throwable error = null;
    final CountDownLatch assigned = new CountDownLatch(1);
    volatile int readCount = 0;
    int rereads = 0;
    int rebalances = 0;
    int deferredCommits = 0;

    LiveConsumer() {
      Properties p = Util.consumerProps(bootstrap, "failover-consumer", topic + "-live");
      consumer = new KafkaConsumer<>(p);
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> tps) {
      rebalances++;
      // A (re)assigned partition starts at the committed offset: position ≤ what was read.
      for (TopicPartition tp : tps) next.put(tp, committed.getOrDefault(tp, 0L));
      if (!tps.isEmpty()) assigned.countDown();
      Util.log("live consumer assigned %s", Util.numbers(tps));
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> tps) {
      commit();
      Util.log("live consumer revoked %s", Util.numbers(tps));
    }

    void commit() {
      Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
      for (TopicPartition tp : consumer.assignment()) {
        Long n = next.get(tp);
        if (n != null && !n.equals(committed.get(tp))) offsets.put(tp, new OffsetAndMetadata(n));
      }
      if (offsets.isEmpty()) return;
      try {
        consumer.commitSync(offsets);
        offsets.forEach((tp, o) -> committed.put(tp, o.offset()));
      } catch (RebalanceInProgressException e) {
        deferredCommits++;
      }
    }

    boolean done() {
      Map<TopicPartition, Long> stop = stopAt;
      if (stop == null) return false;
      for (var e : stop.entrySet()) {
        for (long o = 0; o < e.getValue(); o++) {
          if (!seen.containsKey(e.getKey().partition() + "@" + o)) return false;
        }
      }
      return true;
    }

    @Override
    public void run() {
      try {
        consumer.subscribe(List.of(topic), this);
        while (!done()) {
          for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
            TopicPartition tp = new TopicPartition(r.topic(), r.partition());
            String pos = r.partition() + "@" + r.offset();
            long expected = next.get(tp);
            check(r.offset() == expected, "live consumer read %s, expected offset %d (the next"
                + " one, or the committed one after an assignment)", pos, expected);
            next.put(tp, r.offset() + 1);
            String before = seen.put(pos, r.value());
            readCount++;
            if (before != null) {
              rereads++;
              check(before.equals(r.value()), "live consumer read %s as %s, earlier as %s", pos,
                  r.value(), before);
            }
          }
          commit();
        }
      } catch (Throwable e) {
        error = e;
      } finally {
        consumer.close();
      }
    }
  }

  Map<String, Object> run() throws Exception {
    LiveConsumer live = new LiveConsumer();
    Thread liveThread = new Thread(live, "live-consumer");
    liveThread.start();
    Thread stdin = new Thread(() -> {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in))) {
        for (String line; (line = in.readLine()) != null;) {
          if (line.startsWith("KILLED")) {
            killedWhat = line;
            killed.countDown();
          }
        }
      } catch (Exception e) {
        failures.add("stdin: " + e);
      }
    }, "stdin");
    stdin.setDaemon(true);
    stdin.start();

    // The consumer must be reading when the leader dies (creating __consumer_offsets for its
    // group's coordinator may take a few seconds on a fresh cluster).
    check(live.assigned.await(30, TimeUnit.SECONDS), "the live consumer got no partitions in 30 s");
    Properties pp = Util.producerProps(bootstrap, "failover-producer");
    pp.put("acks", "all");
    pp.put("enable.idempotence", "true");
    Semaphore window = new Semaphore(MAX_IN_FLIGHT);
    int sent = 0;
    long killedAt = 0;
    int sentBeforeKill = Integer.MAX_VALUE;
    boolean ready = false;
    long readyAt = 0;
    int readAtKill = 0;
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
      while (producing) {
        int seq = sent++;
        int partition = seq % partitions;
        window.acquire();
        boolean afterKill = seq >= sentBeforeKill;
        producer.send(new ProducerRecord<>(topic, partition, "k" + seq, "seq-" + seq),
            (md, e) -> {
              window.release();
              if (e != null) {
                failures.add("record " + seq + ": " + e);
                return;
              }
              acked.put(seq, md.partition() + "@" + md.offset());
              long now = System.currentTimeMillis();
              synchronized (lastAck) {
                if (lastAck[partition] > 0) {
                  longestAckGap[partition] =
                      Math.max(longestAckGap[partition], now - lastAck[partition]);
                }
                lastAck[partition] = now;
              }
              if (afterKill) ackedAfterKill[partition].incrementAndGet();
            });
        if (!ready && acked.size() >= READY_AFTER && live.readCount >= READY_AFTER / 2) {
          ready = true;
          readyAt = System.currentTimeMillis();
          Util.log("READY after %d acknowledgements, %d read", acked.size(), live.readCount);
          System.out.println("READY");
          System.out.flush();
        }
        if (ready && killedAt == 0 && killed.getCount() == 0) {
          killedAt = System.currentTimeMillis();
          sentBeforeKill = sent;
          readAtKill = live.readCount;
          Util.log("%s after %d sends, %d acknowledged", killedWhat, sent, acked.size());
        }
        check(!ready || killedAt > 0 || System.currentTimeMillis() - readyAt < 30_000,
            "no KILLED on stdin 30 s after READY");
        if (killedAt > 0) {
          boolean enough = true;
          for (AtomicInteger n : ackedAfterKill) enough &= n.get() >= AFTER_KILL;
          if (enough) producing = false;
          check(System.currentTimeMillis() - killedAt < 60_000,
              "60 s after the kill, acknowledgements of later sends per partition: %s",
              Arrays.toString(ackedAfterKill));
        }
        check(failures.isEmpty(), "sends failed: %s", failures);
        Thread.sleep(1);
      }
      producer.flush();
    }
    check(failures.isEmpty(), "%d sends failed: %s", failures.size(),
        failures.subList(0, Math.min(5, failures.size())));
    check(acked.size() == sent, "%d sends, %d acknowledged", sent, acked.size());
    Util.log("producer done: %d records acknowledged, longest gap between acks per partition"
        + " %s ms", acked.size(), Arrays.toString(longestAckGap));

    // The log: exactly the acknowledged records, each at its acknowledged offset.
    List<TopicPartition> tps = Util.partitions(topic, partitions);
    List<ConsumerRecord<String, String>> log = Util.readAll(bootstrap, tps, 60_000);
    Map<String, String> atOffset = new HashMap<>();
    long[] count = new long[partitions];
    for (ConsumerRecord<String, String> r : log) {
      String pos = r.partition() + "@" + r.offset();
      check(r.offset() == count[r.partition()]++, "the log has %s after offset %d", pos,
          count[r.partition()] - 2);
      int seq = Integer.parseInt(r.value().substring("seq-".length()));
      check(pos.equals(acked.get(seq)), "the log has record %d at %s, it was acknowledged at %s"
          + " (a duplicate or a misplaced record)", seq, pos, acked.get(seq));
      atOffset.put(pos, r.value());
    }
    check(log.size() == acked.size(), "the log holds %d records, %d were acknowledged",
        log.size(), acked.size());
    Util.log("the log holds exactly the %d acknowledged records", log.size());

    Map<TopicPartition, Long> end = new HashMap<>();
    for (int p = 0; p < partitions; p++) end.put(new TopicPartition(topic, p), count[p]);
    live.stopAt = end;
    liveThread.join(60_000);
    if (live.error != null) throw live.error instanceof Exception e ? e : new Exception(live.error);
    check(!liveThread.isAlive(), "the live consumer did not read everything within 60 s");
    for (var e : live.seen.entrySet()) {
      check(e.getValue().equals(atOffset.get(e.getKey())),
          "the live consumer read %s as %s, the log has %s there (read above the HW?)",
          e.getKey(), e.getValue(), atOffset.get(e.getKey()));
    }
    Util.log("the live consumer read all %d offsets without a gap (%d re-read)",
        live.seen.size(), live.rereads);

    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("acknowledged", acked.size());
    summary.put("sentBeforeKill", sentBeforeKill);
    summary.put("longestAckGapMs", Arrays.stream(longestAckGap).boxed().toList());
    summary.put("liveReadAtKill", readAtKill);
    summary.put("liveRead", live.seen.size());
    summary.put("liveRereads", live.rereads);
    summary.put("liveAssignments", live.rebalances);
    summary.put("liveDeferredCommits", live.deferredCommits);
    return summary;
  }
}
