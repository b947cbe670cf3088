package dev.tidelog.interop;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.*;
import org.apache.kafka.common.errors.TimeoutException;

/**
 * The clients of the transactional chaos test (tests/chaos/txn_chaos_test.ts), which does
 * the faults and the checking; this program only acts and reports what it saw, one JSON
 * line per event on stdout (stdout is shared by the threads; a line is printed whole).
 *
 * <p>{@code run BOOTSTRAP TOPIC OUT GROUP PARTITIONS PRODUCERS RECORDS_PER_TXN ABORT_EVERY}
 * runs until a line {@code stop} (or end of input) on stdin:
 * <ul>
 *   <li>PRODUCERS transactional producers ({@code transactional.id} {@code txn-<id>}):
 *       transaction k of producer id writes {@code t<id>-<k>-<i>} for i below
 *       RECORDS_PER_TXN to partition (k + i) % PARTITIONS of TOPIC, flushes, then commits,
 *       or aborts if k % ABORT_EVERY is ABORT_EVERY - 1 or a send failed. Event {@code txn}
 *       with the outcome: {@code committed} (commitTransaction returned), {@code aborted}
 *       (deliberately), {@code failed} (a send failed, so commit was never asked for), or
 *       {@code unknown} (commitTransaction was called and did not return: the transaction
 *       may have committed). A producer that cannot go on (fenced, fatal error, or its abort
 *       failed) is closed and a new one with the same transactional id takes over, which
 *       completes or aborts whatever the old one left.
 *   <li>a consume-transform-produce stage (transactional id {@code txn-copier}, group
 *       GROUP, read_committed): copies each record of TOPIC read at (p, o) with value v to
 *       partition p of OUT as {@code c|p|o|v}, and sends the consumer's offsets to the same
 *       transaction; every 7th copy transaction is aborted on purpose. After any abort or
 *       failure it rewinds to the group's committed offsets. Event {@code copy}.
 *   <li>a read_committed reader of TOPIC and OUT from the beginning (assigned, no group):
 *       event {@code read} per record, {@code reader-error} on errors.
 * </ul>
 * Then events {@code stopped} and {@code done}.
 *
 * <p>{@code read BOOTSTRAP TOPIC OUT GROUP PARTITIONS}: once no transaction is open (every
 * partition's last stable offset equals its high watermark, waited for up to 90 s; event
 * {@code stable}), every record of both topics, read_committed (events {@code final}) and
 * read_uncommitted ({@code raw}), and the group's committed offsets ({@code committed});
 * then {@code done}.
 */
public final class TxnChaos {
  private TxnChaos() {}

  private static final Object OUT_LOCK = new Object();
  private static volatile boolean stopping = false;

  static void emit(Map<String, Object> event) {
    String line = Util.json(event);
    synchronized (OUT_LOCK) {
      System.out.println(line);
      System.out.flush();
    }
  }

  static Map<String, Object> event(String kind, Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("ev", kind);
    for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
    return m;
  }

  static String describe(Throwable e) {
    Throwable root = e;
    while ((root instanceof ExecutionException || root instanceof KafkaException)
        && root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String what = e.getClass().getSimpleName();
    if (root != e) what += "/" + root.getClass().getSimpleName();
    String msg = root.getMessage();
    return msg == null ? what : what + ": " + (msg.length() > 200 ? msg.substring(0, 200) : msg);
  }

  public static void main(String[] args) {
    int code = 0;
    try {
      switch (args[0]) {
        case "run" -> run(args[1], args[2], args[3], args[4], Integer.parseInt(args[5]),
            Integer.parseInt(args[6]), Integer.parseInt(args[7]), Integer.parseInt(args[8]));
        case "read" -> read(args[1], args[2], args[3], args[4], Integer.parseInt(args[5]));
        default -> throw new IllegalArgumentException("unknown mode " + args[0]);
      }
      emit(event("done"));
    } catch (Throwable e) {
      System.err.println("FAIL TxnChaos: " + e);
      e.printStackTrace();
      code = 1;
    }
    System.out.flush();
    System.err.flush();
    Runtime.getRuntime().halt(code);
  }

  /**
   * Client timings shorter than the faults (a node down for 3-5 s, a quorum for longer), so
   * that some sends fail and some commits time out: the outcomes the checker must judge.
   */
  static Properties producerProps(String bootstrap, String txnId) {
    Properties p = Util.producerProps(bootstrap, txnId);
    p.put("transactional.id", txnId);
    p.put("acks", "all");
    p.put("enable.idempotence", "true");
    p.put("linger.ms", "5");
    p.put("request.timeout.ms", "3000");
    p.put("delivery.timeout.ms", "6000");
    p.put("max.block.ms", "4000");
    // An open transaction left by a killed producer is aborted by the coordinator this soon.
    p.put("transaction.timeout.ms", "15000");
    p.put("retry.backoff.ms", "100");
    return p;
  }

  static Properties consumerProps(String bootstrap, String clientId, String group) {
    Properties p = Util.consumerProps(bootstrap, clientId, group);
    p.put("isolation.level", "read_committed");
    p.put("request.timeout.ms", "5000");
    p.put("default.api.timeout.ms", "10000");
    p.put("max.poll.records", "100");
    return p;
  }

  /**
   * A producer of {@code txnId} with its transactions initialised: retried (a new producer
   * after an error other than a timeout) until it works or the run stops.
   */
  static KafkaProducer<String, String> transactionalProducer(
      String bootstrap, String txnId, String who) {
    for (int attempt = 0;; attempt++) {
      KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(bootstrap, txnId));
      try {
        for (int timeouts = 0;; timeouts++) {
          try {
            producer.initTransactions();
            return producer;
          } catch (TimeoutException e) {
            // Allowed: initTransactions may be called again after a timeout.
            emit(event("error", "who", who, "op", "initTransactions", "what", describe(e)));
            if (stopping && timeouts >= 3) throw e;
          }
        }
      } catch (RuntimeException e) {
        emit(event("error", "who", who, "op", "initTransactions", "what", describe(e)));
        producer.close(Duration.ZERO);
        if (stopping && attempt >= 3) throw e;
        Util.sleep(200);
      }
    }
  }

  /** Aborts; false when the producer must be replaced (fatal error, or still timing out). */
  static boolean abort(KafkaProducer<String, String> producer, String who) {
    for (int attempt = 1;; attempt++) {
      try {
        producer.abortTransaction();
        return true;
      } catch (TimeoutException e) {
        emit(event("error", "who", who, "op", "abortTransaction", "what", describe(e)));
        if (attempt >= 3) return false;
      } catch (RuntimeException e) {
        emit(event("error", "who", who, "op", "abortTransaction", "what", describe(e)));
        return false;
      }
    }
  }

  static final class TxnProducer implements Runnable {
    final String bootstrap;
    final String topic;
    final int id;
    final int partitions;
    final int perTxn;
    final int abortEvery;
    final String txnId;
    volatile Throwable error;

    TxnProducer(String bootstrap, String topic, int id, int partitions, int perTxn,
        int abortEvery) {
      this.bootstrap = bootstrap;
      this.topic = topic;
      this.id = id;
      this.partitions = partitions;
      this.perTxn = perTxn;
      this.abortEvery = abortEvery;
      this.txnId = "txn-" + id;
    }

    @Override
    public void run() {
      String who = "producer-" + id;
      KafkaProducer<String, String> producer = null;
      try {
        producer = transactionalProducer(bootstrap, txnId, who);
        emit(event("ready", "who", who));
        for (int k = 0; !stopping; k++) {
          long began = System.currentTimeMillis();
          boolean deliberateAbort = k % abortEvery == abortEvery - 1;
          List<Map<String, Object>> recs = new ArrayList<>();
          List<Future<RecordMetadata>> sends = new ArrayList<>();
          String outcome;
          String why = null;
          boolean replace = false;
          boolean commitCalled = false;
          try {
            producer.beginTransaction();
            for (int i = 0; i < perTxn; i++) {
              int p = (k + i) % partitions;
              String v = "t" + id + "-" + k + "-" + i;
              Map<String, Object> r = new LinkedHashMap<>();
              r.put("p", p);
              r.put("v", v);
              r.put("o", -1);
              recs.add(r);
              sends.add(producer.send(new ProducerRecord<>(topic, p, null, v)));
            }
            producer.flush();
            String sendError = null;
            for (int i = 0; i < sends.size(); i++) {
              try {
                recs.get(i).put("o", sends.get(i).get().offset());
              } catch (ExecutionException e) {
                if (sendError == null) sendError = describe(e);
              }
            }
            if (sendError != null || deliberateAbort) {
              outcome = sendError != null ? "failed" : "aborted";
              why = sendError;
              if (!abort(producer, who)) replace = true;
            } else {
              commitCalled = true;
              // Once: a timeout is not retried (Kafka would allow it) but leaves the outcome
              // unknown, and the producer is replaced; its successor's initTransactions
              // completes or aborts what this one left.
              producer.commitTransaction();
              outcome = "committed";
            }
          } catch (RuntimeException | InterruptedException e) {
            outcome = commitCalled ? "unknown" : deliberateAbort ? "aborted" : "failed";
            why = describe(e);
            emit(event("error", "who", who, "op", "txn " + k, "what", why));
            // Fatal errors (fenced, out of order, ...) make the producer unusable; an
            // abortable one is aborted and the producer goes on.
            if (e instanceof ProducerFencedException || e instanceof OutOfOrderSequenceException
                || e instanceof UnsupportedVersionException
                || e instanceof AuthorizationException || e instanceof IllegalStateException
                || !abort(producer, who)) {
              replace = true;
            }
          }
          emit(event("txn", "id", id, "k", k, "outcome", outcome, "why", why, "recs", recs,
              "ms", System.currentTimeMillis() - began));
          if (replace) {
            producer.close(Duration.ZERO);
            producer = null;
            emit(event("replaced", "who", who, "k", k));
            producer = transactionalProducer(bootstrap, txnId, who);
          }
        }
      } catch (Throwable e) {
        error = e;
        emit(event("error", "who", who, "op", "fatal", "what", describe(e)));
      } finally {
        if (producer != null) producer.close(Duration.ofSeconds(10));
      }
    }
  }

  /** The consume-transform-produce stage. */
  static final class Copier implements Runnable, ConsumerRebalanceListener {
    final String bootstrap;
    final String topic;
    final String out;
    final String group;
    final KafkaConsumer<String, String> consumer;
    volatile Throwable error;
    volatile boolean assigned = false;

    Copier(String bootstrap, String topic, String out, String group) {
      this.bootstrap = bootstrap;
      this.topic = topic;
      this.out = out;
      this.group = group;
      Properties p = consumerProps(bootstrap, "txn-copier", group);
      consumer = new KafkaConsumer<>(p);
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> tps) {
      assigned = true;
      emit(event("assigned", "who", "copier", "partitions", Util.numbers(tps)));
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> tps) {
      emit(event("revoked", "who", "copier", "partitions", Util.numbers(tps)));
    }

    /** Back to the group's committed offsets (or the beginning): the aborted input again. */
    void rewind() {
      Set<TopicPartition> tps = consumer.assignment();
      if (tps.isEmpty()) return;
      for (int attempt = 0;; attempt++) {
        try {
          Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(tps);
          for (TopicPartition tp : tps) {
            OffsetAndMetadata o = committed.get(tp);
            if (o == null) consumer.seekToBeginning(List.of(tp));
            else consumer.seek(tp, o.offset());
          }
          return;
        } catch (RuntimeException e) {
          emit(event("error", "who", "copier", "op", "rewind", "what", describe(e)));
          if (attempt >= 20) throw e;
          Util.sleep(200);
        }
      }
    }

    @Override
    public void run() {
      String who = "copier";
      KafkaProducer<String, String> producer = null;
      try {
        producer = transactionalProducer(bootstrap, "txn-copier", who);
        consumer.subscribe(List.of(topic), this);
        emit(event("ready", "who", who));
        int k = 0;
        while (!stopping) {
          ConsumerRecords<String, String> batch;
          try {
            batch = consumer.poll(Duration.ofMillis(200));
          } catch (RuntimeException e) {
            emit(event("error", "who", who, "op", "poll", "what", describe(e)));
            Util.sleep(200);
            continue;
          }
          if (batch.isEmpty()) continue;
          long began = System.currentTimeMillis();
          boolean deliberateAbort = k % 7 == 6;
          List<List<Object>> inputs = new ArrayList<>();
          Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
          String outcome;
          String why = null;
          boolean replace = false;
          boolean commitCalled = false;
          try {
            producer.beginTransaction();
            List<Future<RecordMetadata>> sends = new ArrayList<>();
            for (ConsumerRecord<String, String> r : batch) {
              inputs.add(List.of(r.partition(), r.offset()));
              String copy = "c|" + r.partition() + "|" + r.offset() + "|" + r.value();
              sends.add(producer.send(new ProducerRecord<>(out, r.partition(), null, copy)));
              offsets.put(new TopicPartition(r.topic(), r.partition()),
                  new OffsetAndMetadata(r.offset() + 1));
            }
            producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
            producer.flush();
            String sendError = null;
            for (Future<RecordMetadata> f : sends) {
              try {
                f.get();
              } catch (ExecutionException e) {
                if (sendError == null) sendError = describe(e);
              }
            }
            if (sendError != null || deliberateAbort) {
              outcome = sendError != null ? "failed" : "aborted";
              why = sendError;
              if (!abort(producer, who)) replace = true;
            } else {
              commitCalled = true;
              // Once: a timeout is not retried (Kafka would allow it) but leaves the outcome
              // unknown, and the producer is replaced; its successor's initTransactions
              // completes or aborts what this one left.
              producer.commitTransaction();
              outcome = "committed";
            }
          } catch (RuntimeException | InterruptedException e) {
            outcome = commitCalled ? "unknown" : deliberateAbort ? "aborted" : "failed";
            why = describe(e);
            emit(event("error", "who", who, "op", "copy " + k, "what", why));
            if (e instanceof ProducerFencedException || e instanceof OutOfOrderSequenceException
                || e instanceof UnsupportedVersionException
                || e instanceof AuthorizationException || e instanceof IllegalStateException
                || !abort(producer, who)) {
              replace = true;
            }
          }
          emit(event("copy", "k", k, "outcome", outcome, "why", why, "inputs", inputs,
              "ms", System.currentTimeMillis() - began));
          if (replace) {
            producer.close(Duration.ZERO);
            producer = null;
            emit(event("replaced", "who", who, "k", k));
            // Its initTransactions completes (or aborts) whatever the old one left, so
            // the committed offsets read next are final.
            producer = transactionalProducer(bootstrap, "txn-copier", who);
          }
          if (!outcome.equals("committed")) rewind();
          k++;
        }
      } catch (Throwable e) {
        error = e;
        emit(event("error", "who", who, "op", "fatal", "what", describe(e)));
      } finally {
        if (producer != null) producer.close(Duration.ofSeconds(10));
        consumer.close(Duration.ofSeconds(10));
      }
    }
  }

  /** A read_committed reader of both topics from the beginning, for the whole run. */
  static final class LiveReader implements Runnable {
    final String bootstrap;
    final List<TopicPartition> tps;
    volatile boolean stop = false;

    LiveReader(String bootstrap, List<TopicPartition> tps) {
      this.bootstrap = bootstrap;
      this.tps = tps;
    }

    @Override
    public void run() {
      Properties p = consumerProps(bootstrap, "txn-reader", null);
      // An out-of-range position is reported, not silently reset.
      p.put("auto.offset.reset", "none");
      try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
        c.assign(tps);
        c.seekToBeginning(tps);
        while (!stop) {
          try {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
              emit(event("read", "t", r.topic(), "p", r.partition(), "o", r.offset(), "v",
                  r.value()));
            }
          } catch (org.apache.kafka.clients.consumer.OffsetOutOfRangeException e) {
            emit(event("reader-error", "what", describe(e), "partitions",
                e.offsetOutOfRangePartitions().toString()));
            // Start those over: the checker sees the re-reads.
            c.seekToBeginning(e.offsetOutOfRangePartitions().keySet());
          } catch (RuntimeException e) {
            emit(event("reader-error", "what", describe(e)));
            Util.sleep(200);
          }
        }
      }
    }
  }

  static void run(String bootstrap, String topic, String out, String group, int partitions,
      int producers, int perTxn, int abortEvery) throws Exception {
    List<TopicPartition> tps = new ArrayList<>(Util.partitions(topic, partitions));
    tps.addAll(Util.partitions(out, partitions));
    LiveReader reader = new LiveReader(bootstrap, tps);
    Copier copier = new Copier(bootstrap, topic, out, group);
    List<TxnProducer> writers = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    for (int id = 0; id < producers; id++) {
      writers.add(new TxnProducer(bootstrap, topic, id, partitions, perTxn, abortEvery));
    }
    threads.add(new Thread(reader, "reader"));
    threads.add(new Thread(copier, "copier"));
    for (TxnProducer w : writers) threads.add(new Thread(w, "producer-" + w.id));
    for (Thread t : threads) t.start();
    try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in))) {
      for (String line; (line = in.readLine()) != null;) {
        if (line.trim().equals("stop")) break;
      }
    }
    stopping = true;
    emit(event("stopping"));
    // The producers and the copier finish the transaction in hand; then the reader stops.
    for (Thread t : threads.subList(1, threads.size())) t.join(90_000);
    reader.stop = true;
    threads.get(0).join(30_000);
    List<String> stuck = new ArrayList<>();
    for (Thread t : threads) if (t.isAlive()) stuck.add(t.getName());
    emit(event("stopped", "stuck", stuck));
  }

  static void read(String bootstrap, String topic, String out, String group, int partitions)
      throws Exception {
    List<TopicPartition> tps = new ArrayList<>(Util.partitions(topic, partitions));
    tps.addAll(Util.partitions(out, partitions));
    Properties committedProps = consumerProps(bootstrap, "txn-final", null);
    Properties rawProps = consumerProps(bootstrap, "txn-raw", null);
    rawProps.put("isolation.level", "read_uncommitted");
    long began = System.currentTimeMillis();
    Map<TopicPartition, Long> lso;
    Map<TopicPartition, Long> hw;
    try (KafkaConsumer<String, String> rc = new KafkaConsumer<>(committedProps);
        KafkaConsumer<String, String> ru = new KafkaConsumer<>(rawProps)) {
      for (;;) {
        lso = rc.endOffsets(tps);
        hw = ru.endOffsets(tps);
        if (lso.equals(hw) || System.currentTimeMillis() - began > 90_000) break;
        Util.sleep(200);
      }
    }
    Map<String, Object> open = new TreeMap<>();
    for (TopicPartition tp : tps) {
      if (!lso.get(tp).equals(hw.get(tp))) open.put(tp.toString(), lso.get(tp) + "<" + hw.get(tp));
    }
    emit(event("stable", "ms", System.currentTimeMillis() - began, "open", open));
    readAll(committedProps, tps, "final");
    readAll(rawProps, tps, "raw");
    Properties ap = new Properties();
    ap.put("bootstrap.servers", bootstrap);
    try (Admin admin = Admin.create(ap)) {
      Map<TopicPartition, OffsetAndMetadata> offsets = admin
          .listConsumerGroupOffsets(Map.of(group, new ListConsumerGroupOffsetsSpec()),
              new ListConsumerGroupOffsetsOptions().requireStable(true))
          .partitionsToOffsetAndMetadata(group).get(30, TimeUnit.SECONDS);
      for (var e : offsets.entrySet()) {
        if (e.getValue() == null) continue;
        emit(event("committed", "t", e.getKey().topic(), "p", e.getKey().partition(), "o",
            e.getValue().offset()));
      }
    }
  }

  /** Every record of {@code tps} up to the end offsets (taken once) at the props' isolation. */
  static void readAll(Properties props, List<TopicPartition> tps, String kind) {
    props.put("auto.offset.reset", "earliest");
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props)) {
      c.assign(tps);
      c.seekToBeginning(tps);
      Map<TopicPartition, Long> end = c.endOffsets(tps);
      long deadline = System.currentTimeMillis() + 60_000;
      while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
        if (System.currentTimeMillis() > deadline) {
          throw new RuntimeException("reading " + kind + " timed out: positions "
              + Util.positions(c, tps) + ", end offsets " + end);
        }
        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
          emit(event(kind, "t", r.topic(), "p", r.partition(), "o", r.offset(), "v",
              r.value()));
        }
      }
    }
  }
}
