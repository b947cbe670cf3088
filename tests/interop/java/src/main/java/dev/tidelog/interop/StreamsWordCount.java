package dev.tidelog.interop;

import static dev.tidelog.interop.Util.check;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.*;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.*;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * Kafka Streams word count with {@code processing.guarantee=exactly_once_v2} through
 * failures: the input topic gets {@code lines} lines of known words up front; the app (two
 * stream threads, internal topics with replication factor 3 and min.insync.replicas 2, no
 * record cache, so each word occurrence emits the word's next count) counts words into the
 * output topic, while a read_committed consumer follows the output. Modes:
 * <ul>
 *   <li>{@code broker-kill}: the caller kills a broker (kill -9) and restarts it; on stdout
 *       and stdin:
 *       <ol>
 *         <li>once a quarter of the counts are committed, the program prints
 *             {@code READY txn-coordinators=A,B group-coordinator=C} (the brokers
 *             coordinating the app's transactional ids and its group); the caller kills a
 *             broker and writes {@code KILLED ...};
 *         <li>once another tenth of the counts are committed after that, it prints
 *             {@code RESUMED}; the caller restarts the broker and writes {@code RESTARTED};
 *         <li>once every word's latest committed count is its final count, the app closes.
 *       </ol>
 *   <li>{@code crash}: the app itself is killed: once a third of the counts are committed
 *       the program prints {@code READY} and goes on until the caller kills it (kill -9, in
 *       the middle of a transaction);
 *   <li>{@code resume}: no input is produced; the app starts again on the crashed one's
 *       state directory (so the same process id and transactional ids: its first
 *       InitProducerId aborts what the crashed instance left open), restores its stores
 *       from the changelogs and runs until every final count is committed.
 * </ul>
 * Then ({@code broker-kill}, {@code resume}), read afresh with read_committed, each word's
 * counts must be exactly 1, 2, ..., n in order: a record processed twice (its output
 * committed twice) would repeat a count, a lost one would skip one. The app's group must
 * have committed the input's end offsets. A stream thread that dies is replaced (and
 * counted); the app must never reach ERROR.
 *
 * <p>Args: bootstrap input output applicationId stateDir lines paceMs mode (paceMs: a sleep
 * per line, so that the kill lands mid-run)
 */
public final class StreamsWordCount {
  private static final int VOCABULARY = 60;
  private static final int PARTITIONS = 3;
  /** The input producer's batch.size: about 25 lines per batch. */
  private static final int INPUT_BATCH_BYTES = 1024;

  private final String bootstrap;
  private final String input;
  private final String output;
  private final String appId;
  private final String stateDir;
  private final int lines;
  private final int paceMs;
  private final String mode;
  private final Map<String, Long> expected = new TreeMap<>();
  private long totalWords = 0;
  private final List<String> threadFailures = Collections.synchronizedList(new ArrayList<>());
  private final List<String> states = Collections.synchronizedList(new ArrayList<>());
  private final BlockingQueue<String> stdin = new LinkedBlockingQueue<>();
  /** Records restored into the stores from their changelogs. */
  private final AtomicLong restored = new AtomicLong();

  public static void main(String[] args) {
    Util.main("StreamsWordCount", () -> new StreamsWordCount(args).run());
  }

  StreamsWordCount(String[] args) {
    bootstrap = args[0];
    input = args[1];
    output = args[2];
    appId = args[3];
    stateDir = args[4];
    lines = Integer.parseInt(args[5]);
    paceMs = Integer.parseInt(args[6]);
    mode = args[7];
    check(List.of("broker-kill", "crash", "resume").contains(mode), "unknown mode %s", mode);
  }

  /** Line {@code i}: 1 to 5 words of the vocabulary, none repeated within the line. */
  static String line(int i) {
    StringJoiner j = new StringJoiner(" ");
    for (int w = 0; w <= i % 5; w++) j.add(String.format("w%02d", (i * 7 + w * 13) % VOCABULARY));
    return j.toString();
  }

  /** Follows the output with read_committed: every count of every word, in order. */
  final class OutputFollower implements Runnable {
    private final Map<String, List<Long>> counts = new HashMap<>();
    private long read = 0;
    volatile boolean stop = false;
    volatile Throwable error = null;

    synchronized long read() {
      return read;
    }

    /** Every word's latest count is its final count. */
    synchronized boolean complete() {
      if (!counts.keySet().equals(expected.keySet())) return false;
      for (var e : expected.entrySet()) {
        List<Long> c = counts.get(e.getKey());
        if (!c.get(c.size() - 1).equals(e.getValue())) return false;
      }
      return true;
    }

    @Override
    public void run() {
      try (KafkaConsumer<String, Long> c = outputConsumer("follower", "read_committed")) {
        List<TopicPartition> tps = Util.partitions(output, PARTITIONS);
        c.assign(tps);
        c.seekToBeginning(tps);
        while (!stop) {
          for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(100))) {
            synchronized (this) {
              counts.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
              read++;
            }
          }
        }
      } catch (Throwable e) {
        error = e;
      }
    }
  }

  private KafkaConsumer<String, Long> outputConsumer(String clientId, String isolation) {
    Properties p = Util.consumerProps(bootstrap, clientId, null);
    p.put("value.deserializer", LongDeserializer.class.getName());
    p.put("isolation.level", isolation);
    return new KafkaConsumer<>(p);
  }

  private Topology topology() {
    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
        .peek((k, v) -> {
          if (paceMs > 0) Util.sleep(paceMs);
        })
        .flatMapValues(v -> Arrays.asList(v.split(" ")))
        .groupBy((k, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
        .count(Materialized.as("counts"))
        .toStream()
        .to(output, Produced.with(Serdes.String(), Serdes.Long()));
    return builder.build();
  }

  private Properties streamsProps() {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 3);
    p.put(StreamsConfig.topicPrefix(TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG), "2");
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    // No cache: each word occurrence emits the word's next count (1, 2, 3, ...).
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 2);
    // A replaced thread's member (Streams does not leave the group on close) is dropped
    // after this, not after the default 45 s.
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10_000);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1_000);
    // Records go out while their transaction is open (Streams lingers 100 ms by default,
    // about as long as a transaction lasts here), so a crash leaves an open transaction with
    // records in the output, the changelog and the repartition topic, for the next instance
    // to abort and every read_committed reader to skip.
    p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
    // The paced input must not starve the counting tasks: a thread polls (and so joins a
    // rebalance) only once it has processed what it polled, and the consumer hands out one
    // partition's fetched records before the next's, so small polls and small fetches (one
    // input batch, see INPUT_BATCH_BYTES) keep the input and the repartition topic
    // interleaved.
    p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), 50);
    p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG),
        INPUT_BATCH_BYTES);
    return p;
  }

  /** Waits for {@code what} (polled every 50 ms) or fails after {@code timeoutMs}. */
  private void await(String what, long timeoutMs, OutputFollower follower,
      BooleanSupplier done) throws Exception {
    long deadline = System.currentTimeMillis() + timeoutMs;
    while (!done.getAsBoolean()) {
      if (follower.error != null) throw new Exception("output follower failed", follower.error);
      check(!states.contains("ERROR"), "the Streams app went to ERROR (states %s, thread"
          + " failures %s)", states, threadFailures);
      check(System.currentTimeMillis() < deadline, "%s: not within %d ms (%d of %d counts"
          + " committed, states %s, thread failures %s)", what, timeoutMs, follower.read(),
          totalWords, states, threadFailures);
      Util.sleep(50);
    }
  }

  /** Waits for a stdin line starting with {@code word}; returns it. */
  private String awaitLine(String word, long timeoutMs) throws Exception {
    long deadline = System.currentTimeMillis() + timeoutMs;
    for (;;) {
      String line = stdin.poll(Math.max(1, deadline - System.currentTimeMillis()),
          TimeUnit.MILLISECONDS);
      check(line != null, "no %s on stdin within %d ms", word, timeoutMs);
      if (line.startsWith(word)) return line;
    }
  }

  /** Where the app's transactional ids and its group are coordinated now. */
  private String coordinators(Admin admin) throws Exception {
    List<String> ids = admin.listTransactions().all().get().stream()
        .map(TransactionListing::transactionalId).filter(id -> id.startsWith(appId + "-"))
        .toList();
    Set<Integer> txn = new TreeSet<>();
    for (TransactionDescription d : admin.describeTransactions(ids).all().get().values()) {
      txn.add(d.coordinatorId());
    }
    int group = admin.describeConsumerGroups(List.of(appId)).all().get().get(appId)
        .coordinator().id();
    StringJoiner j = new StringJoiner(",");
    txn.forEach(id -> j.add(id.toString()));
    return "txn-coordinators=" + j + " group-coordinator=" + group;
  }

  Map<String, Object> run() throws Exception {
    Thread reader = new Thread(() -> {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in))) {
        for (String line; (line = in.readLine()) != null;) stdin.add(line);
      } catch (Exception e) {
        stdin.add("stdin failed: " + e);
      }
    }, "stdin");
    reader.setDaemon(true);
    reader.start();

    for (int i = 0; i < lines; i++) {
      for (String w : line(i).split(" ")) {
        expected.merge(w, 1L, Long::sum);
        totalWords++;
      }
    }
    if (!mode.equals("resume")) {
      Properties pp = Util.producerProps(bootstrap, "wordcount-input");
      pp.put("batch.size", INPUT_BATCH_BYTES);
      try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
        for (int i = 0; i < lines; i++) {
          producer.send(new ProducerRecord<>(input, "line-" + i, line(i)));
        }
        producer.flush();
      }
      Util.log("produced %d lines, %d words, %d distinct", lines, totalWords, expected.size());
    }

    OutputFollower follower = new OutputFollower();
    Thread followerThread = new Thread(follower, "output-follower");
    followerThread.start();
    Properties ap = new Properties();
    ap.put("bootstrap.servers", bootstrap);
    String readyAt = "";
    String killed = "";
    long readAtKill = -1;
    int threadsAtEnd;
    try (Admin admin = Admin.create(ap);
        KafkaStreams streams = new KafkaStreams(topology(), streamsProps())) {
      streams.setStateListener((now, before) -> {
        states.add(now.toString());
        Util.log("Streams %s -> %s", before, now);
      });
      streams.setUncaughtExceptionHandler(e -> {
        threadFailures.add(e.toString());
        Util.log("a stream thread died (replaced): %s", e);
        return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
      });
      streams.setGlobalStateRestoreListener(new StateRestoreListener() {
        @Override
        public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

        @Override
        public void onBatchRestored(TopicPartition tp, String store, long end, long n) {}

        @Override
        public void onRestoreEnd(TopicPartition tp, String store, long total) {
          restored.addAndGet(total);
          Util.log("restored %d records of %s from %s", total, store, tp);
        }
      });
      streams.start();

      if (mode.equals("crash")) {
        await("a third of the counts committed", 60_000, follower,
            () -> follower.read() >= totalWords / 3);
        Util.log("READY after %d of %d counts", follower.read(), totalWords);
        System.out.println("READY");
        System.out.flush();
        await("the kill", 30_000, follower, () -> false);
      }
      if (mode.equals("broker-kill")) {
        await("a quarter of the counts committed", 60_000, follower,
            () -> follower.read() >= totalWords / 4);
        readyAt = coordinators(admin);
        Util.log("READY after %d of %d counts: %s", follower.read(), totalWords, readyAt);
        System.out.println("READY " + readyAt);
        System.out.flush();
        killed = awaitLine("KILLED", 30_000);
        long atKill = follower.read();
        readAtKill = atKill;
        Util.log("%s at %d counts committed", killed, atKill);

        await("a tenth more of the counts committed after the kill", 90_000, follower,
            () -> follower.read() >= atKill + totalWords / 10 || follower.complete());
        Util.log("RESUMED at %d counts committed", follower.read());
        System.out.println("RESUMED");
        System.out.flush();
        awaitLine("RESTARTED", 60_000);
        Util.log("the broker is back at %d counts committed", follower.read());
      }

      await("every word's final count committed", 90_000, follower, follower::complete);
      Util.log("all %d counts committed; closing the app", follower.read());
      threadsAtEnd = streams.metadataForLocalThreads().size();
      check(streams.close(Duration.ofSeconds(60)), "the Streams app did not close within 60 s");
    }
    follower.stop = true;
    followerThread.join(10_000);
    check(states.contains("RUNNING") && !states.contains("ERROR"), "Streams states: %s",
        states);

    // The whole output, afresh: each word's counts are exactly 1..n, in order.
    List<TopicPartition> outTps = Util.partitions(output, PARTITIONS);
    Map<String, List<Long>> counts = new TreeMap<>();
    long[] perPartition = new long[PARTITIONS];
    long committedRecords = readOutput(outTps, "read_committed", counts, perPartition);
    List<String> wrong = new ArrayList<>();
    for (var e : expected.entrySet()) {
      List<Long> c = counts.getOrDefault(e.getKey(), List.of());
      boolean exact = c.size() == e.getValue();
      for (int i = 0; exact && i < c.size(); i++) exact = c.get(i) == i + 1;
      if (!exact) wrong.add(e.getKey() + " (final " + e.getValue() + "): " + c);
    }
    check(counts.keySet().equals(expected.keySet()), "output words %s, expected %s",
        counts.keySet(), expected.keySet());
    check(wrong.isEmpty(), "%d words do not count 1..n exactly once each: %s", wrong.size(),
        wrong.subList(0, Math.min(5, wrong.size())));
    check(committedRecords == totalWords, "read_committed output holds %d counts, expected %d",
        committedRecords, totalWords);
    long allRecords =
        readOutput(outTps, "read_uncommitted", new TreeMap<>(), new long[PARTITIONS]);

    // The input's offsets were committed with the output.
    List<TopicPartition> inTps = Util.partitions(input, PARTITIONS);
    Map<TopicPartition, Long> inEnd;
    try (KafkaConsumer<String, Long> c = outputConsumer("input-end", "read_uncommitted")) {
      inEnd = new TreeMap<>(Util::compare);
      inEnd.putAll(c.endOffsets(inTps));
    }
    Map<TopicPartition, Long> groupOffsets = new TreeMap<>(Util::compare);
    try (Admin admin = Admin.create(ap)) {
      admin.listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata().get()
          .forEach((tp, o) -> {
            if (o != null && tp.topic().equals(input)) groupOffsets.put(tp, o.offset());
          });
    }
    check(groupOffsets.equals(inEnd), "the app's committed input offsets %s, the input ends at"
        + " %s", groupOffsets, inEnd);
    Util.log("exact: %d counts of %d words; %d output records including aborted ones",
        committedRecords, expected.size(), allRecords);

    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("mode", mode);
    summary.put("lines", lines);
    summary.put("words", totalWords);
    summary.put("distinctWords", expected.size());
    if (mode.equals("broker-kill")) {
      summary.put("coordinatorsAtReady", readyAt);
      summary.put("killed", killed);
      summary.put("countsAtKill", readAtKill);
    }
    summary.put("committedOutput", committedRecords);
    summary.put("uncommittedOutput", allRecords);
    summary.put("committedOutputPerPartition", Arrays.stream(perPartition).boxed().toList());
    summary.put("restoredRecords", restored.get());
    summary.put("threadFailures", threadFailures);
    summary.put("threadsAtEnd", threadsAtEnd);
    summary.put("rebalances", states.stream().filter(s -> s.equals("REBALANCING")).count());
    return summary;
  }

  /** Reads the whole output with {@code isolation}; fills word → counts; returns the count. */
  private long readOutput(List<TopicPartition> tps, String isolation,
      Map<String, List<Long>> counts, long[] perPartition) {
    try (KafkaConsumer<String, Long> c = outputConsumer("output-" + isolation, isolation)) {
      c.assign(tps);
      c.seekToBeginning(tps);
      Map<TopicPartition, Long> end = c.endOffsets(tps);
      long n = 0;
      long deadline = System.currentTimeMillis() + 30_000;
      while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
        check(System.currentTimeMillis() < deadline, "reading the output (%s) timed out:"
            + " positions %s, end offsets %s", isolation, Util.positions(c, tps), end);
        for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200))) {
          counts.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
          perPartition[r.partition()]++;
          n++;
        }
      }
      return n;
    }
  }
}
