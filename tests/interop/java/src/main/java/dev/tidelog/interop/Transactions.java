package dev.tidelog.interop;

import static dev.tidelog.interop.Util.check;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;

/**
 * Transactions of kafka-clients (KIP-98, and KIP-447's sendOffsetsToTransaction with the
 * consumer's group metadata), on topics of 3 partitions that the caller creates:
 * <ul>
 *   <li>{@code PREFIX-data}: a transactional producer commits 7 transactions and aborts 3
 *       (each writes to all 3 partitions; the aborted ones are flushed first, so their
 *       records are in the log), with a plain record after each; read_committed reads
 *       exactly the committed and the plain records, in order, read_uncommitted all of them;
 *       each transaction left one marker per partition (end offset = records + markers);
 *       describeTransactions shows the open transaction (Ongoing, with its partitions),
 *       then CompleteCommit or CompleteAbort; listTransactions lists the id.
 *   <li>{@code PREFIX-lso}: producer A's open transaction holds the last stable offset at
 *       its first record while producer B commits behind it: read_committed ends there and
 *       reads nothing of B's; once A aborts, it reads B's records and none of A's (which
 *       come first in the same partition: the aborted transactions of Fetch).
 *   <li>{@code PREFIX-in} to {@code PREFIX-out}: consume-transform-produce. A read_committed
 *       group consumer and a transactional producer copy every record, sending the consumed
 *       offsets to each transaction; the third transaction is aborted after its offsets were
 *       sent (the group's offsets do not move; the consumer seeks back) and redone. The
 *       output holds each copy exactly once under read_committed, in input order per
 *       partition, and the aborted copies too under read_uncommitted; the group's committed
 *       offsets are the input's end offsets.
 *   <li>{@code PREFIX-fence}: a second producer with the same transactional.id fences the
 *       first (its open transaction is aborted and the epoch bumped): the first producer's
 *       commitTransaction throws ProducerFencedException, and read_committed holds only the
 *       second producer's records.
 * </ul>
 *
 * <p>Args: bootstrap prefix
 */
public final class Transactions {
  private static final int PARTITIONS = 3;
  private static final int TXNS = 10;
  private static final int PER_TXN = 30;
  private static final int COPY_RECORDS = 600;
  /** The kafka-clients default of {@code transaction.timeout.ms}. */
  private static final int DEFAULT_TXN_TIMEOUT_MS = 60_000;

  private final String bootstrap;
  private final String prefix;
  private final Admin admin;
  private final Map<String, Object> summary = new LinkedHashMap<>();

  public static void main(String[] args) {
    Util.main("Transactions", () -> new Transactions(args[0], args[1]).run());
  }

  Transactions(String bootstrap, String prefix) {
    this.bootstrap = bootstrap;
    this.prefix = prefix;
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    this.admin = Admin.create(p);
  }

  Map<String, Object> run() throws Exception {
    try (admin) {
      commitsAndAborts();
      lastStableOffset();
      consumeTransformProduce();
      fencing();
    }
    return summary;
  }

  private Properties txnProps(String clientId, String transactionalId) {
    Properties p = Util.producerProps(bootstrap, clientId);
    p.put("transactional.id", transactionalId);
    return p;
  }

  private static List<List<String>> perPartition() {
    List<List<String>> lists = new ArrayList<>();
    for (int i = 0; i < PARTITIONS; i++) lists.add(new ArrayList<>());
    return lists;
  }

  /** The values read, per partition, in offset order. */
  private static List<List<String>> byPartition(List<ConsumerRecord<String, String>> records) {
    List<List<String>> lists = perPartition();
    for (ConsumerRecord<String, String> r : records) lists.get(r.partition()).add(r.value());
    return lists;
  }

  private static List<String> values(List<ConsumerRecord<String, String>> records) {
    return records.stream().map(ConsumerRecord::value).sorted().toList();
  }

  private Map<TopicPartition, Long> endOffsets(List<TopicPartition> tps, String isolation) {
    Properties p = Util.consumerProps(bootstrap, "end-offsets", null);
    p.put("isolation.level", isolation);
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
      Map<TopicPartition, Long> end = new TreeMap<>(Util::compare);
      end.putAll(c.endOffsets(tps));
      return end;
    }
  }

  private TransactionDescription describe(String transactionalId) throws Exception {
    return admin.describeTransactions(List.of(transactionalId)).description(transactionalId).get();
  }

  /**
   * Waits until the coordinator shows {@code state} for the id: after commitTransaction or
   * abortTransaction returns, the markers are still being written (Kafka answers EndTxn
   * once PrepareCommit/PrepareAbort is durable), and Complete* follows the last marker.
   */
  private TransactionDescription awaitState(String transactionalId, TransactionState state)
      throws Exception {
    long deadline = System.currentTimeMillis() + 30_000;
    for (;;) {
      TransactionDescription d = describe(transactionalId);
      if (d.state() == state) return d;
      check(System.currentTimeMillis() < deadline, "%s: still %s 30 s after the end, not %s",
          transactionalId, d.state(), state);
      Util.sleep(50);
    }
  }

  /** PREFIX-data: commits, aborts, plain records between them, and what the admin shows. */
  private void commitsAndAborts() throws Exception {
    String topic = prefix + "-data";
    String txid = prefix + "-basic";
    List<TopicPartition> tps = Util.partitions(topic, PARTITIONS);
    // Per partition, what read_committed and read_uncommitted must read, in order.
    List<List<String>> committed = perPartition();
    List<List<String>> all = perPartition();
    int aborted = 0;
    try (KafkaProducer<String, String> txn = new KafkaProducer<>(txnProps("basic-txn", txid));
        KafkaProducer<String, String> plain =
            new KafkaProducer<>(Util.producerProps(bootstrap, "basic-plain"))) {
      txn.initTransactions();
      TransactionDescription empty = describe(txid);
      check(empty.state() == TransactionState.EMPTY && empty.topicPartitions().isEmpty(),
          "a new transactional id: describeTransactions shows %s", empty);
      for (int t = 0; t < TXNS; t++) {
        boolean abort = t % 3 == 1;
        txn.beginTransaction();
        for (int i = 0; i < PER_TXN; i++) {
          int p = i % PARTITIONS;
          String v = (abort ? "aborted-" : "committed-") + t + "-" + i;
          txn.send(new ProducerRecord<>(topic, p, "t" + t, v));
          all.get(p).add(v);
          if (!abort) committed.get(p).add(v);
        }
        // Flushed, so the records are in the log before the marker (and, when aborted,
        // read_committed must skip them).
        txn.flush();
        if (t == 0) checkOngoing(txid, empty.producerId(), tps);
        if (abort) {
          txn.abortTransaction();
          aborted++;
          awaitState(txid, TransactionState.COMPLETE_ABORT);
        } else {
          txn.commitTransaction();
        }
        int p = t % PARTITIONS;
        String v = "plain-" + t;
        plain.send(new ProducerRecord<>(topic, p, "plain", v)).get();
        committed.get(p).add(v);
        all.get(p).add(v);
      }
      TransactionDescription done = awaitState(txid, TransactionState.COMPLETE_COMMIT);
      check(done.topicPartitions().isEmpty(), "a completed transaction still has partitions: %s",
          done);
    }
    Util.log("%d transactions, %d aborted", TXNS, aborted);

    List<ConsumerRecord<String, String>> rc =
        Util.readAll(bootstrap, tps, 30_000, "read_committed");
    check(byPartition(rc).equals(committed),
        "read_committed read (per partition) %s, expected %s", byPartition(rc), committed);
    List<ConsumerRecord<String, String>> ru =
        Util.readAll(bootstrap, tps, 30_000, "read_uncommitted");
    check(byPartition(ru).equals(all), "read_uncommitted read (per partition) %s, expected %s",
        byPartition(ru), all);
    Map<TopicPartition, Long> hw = endOffsets(tps, "read_uncommitted");
    Map<TopicPartition, Long> lso = endOffsets(tps, "read_committed");
    check(hw.equals(lso), "no transaction is open, yet the end offsets are %s (HW) and %s (LSO)",
        hw, lso);
    for (TopicPartition tp : tps) {
      // Every transaction wrote to every partition: one marker each.
      long expected = all.get(tp.partition()).size() + TXNS;
      check(hw.get(tp) == expected, "%s ends at %d, expected %d records + %d markers = %d", tp,
          hw.get(tp), all.get(tp.partition()).size(), TXNS, expected);
    }
    Util.log("read_committed: %d records, read_uncommitted: %d, end offsets %s", rc.size(),
        ru.size(), hw);
    summary.put("committedRead", rc.size());
    summary.put("uncommittedRead", ru.size());
  }

  /** The open transaction as the coordinator and listTransactions show it. */
  private void checkOngoing(String txid, long producerId, List<TopicPartition> tps)
      throws Exception {
    TransactionDescription d = describe(txid);
    check(d.state() == TransactionState.ONGOING, "describeTransactions: %s, expected Ongoing", d);
    check(d.producerId() == producerId, "describeTransactions: producer id %d, then %d",
        producerId, d.producerId());
    check(new HashSet<>(d.topicPartitions()).equals(new HashSet<>(tps)),
        "describeTransactions: partitions %s, expected %s", d.topicPartitions(), tps);
    check(d.transactionTimeoutMs() == DEFAULT_TXN_TIMEOUT_MS && d.transactionStartTimeMs()
        .isPresent(), "describeTransactions: timeout or start time wrong: %s", d);
    Collection<TransactionListing> listed = admin.listTransactions().all().get();
    check(listed.stream().anyMatch(l -> l.transactionalId().equals(txid)
        && l.producerId() == producerId && l.state() == TransactionState.ONGOING),
        "listTransactions does not show %s as Ongoing: %s", txid, listed);
    Collection<TransactionListing> ongoing = admin.listTransactions(
        new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING))).all().get();
    check(ongoing.stream().allMatch(l -> l.state() == TransactionState.ONGOING)
        && ongoing.stream().anyMatch(l -> l.transactionalId().equals(txid)),
        "listTransactions filtered by Ongoing: %s", ongoing);
    Collection<TransactionListing> byId = admin.listTransactions(
        new ListTransactionsOptions().filterProducerIds(Set.of(producerId))).all().get();
    check(byId.size() == 1 && byId.iterator().next().transactionalId().equals(txid),
        "listTransactions filtered by producer id %d: %s", producerId, byId);
  }

  /** PREFIX-lso: an open transaction holds the LSO; an earlier abort is filtered. */
  private void lastStableOffset() throws Exception {
    String topic = prefix + "-lso";
    TopicPartition tp = new TopicPartition(topic, 0);
    List<TopicPartition> tps = List.of(tp);
    String idA = prefix + "-lso-a";
    String idB = prefix + "-lso-b";
    List<String> bValues = new ArrayList<>();
    try (KafkaProducer<String, String> a = new KafkaProducer<>(txnProps("lso-a", idA));
        KafkaProducer<String, String> b = new KafkaProducer<>(txnProps("lso-b", idB))) {
      a.initTransactions();
      b.initTransactions();
      a.beginTransaction();
      for (int i = 0; i < 5; i++) a.send(new ProducerRecord<>(topic, 0, "a", "a-" + i));
      a.flush();
      b.beginTransaction();
      for (int i = 0; i < 5; i++) {
        b.send(new ProducerRecord<>(topic, 0, "b", "b-" + i));
        bValues.add("b-" + i);
      }
      b.commitTransaction();
      awaitState(idB, TransactionState.COMPLETE_COMMIT);
      // A's 5 records, B's 5 and B's marker: the HW is 11, the LSO A's first offset.
      long hw = endOffsets(tps, "read_uncommitted").get(tp);
      long lso = endOffsets(tps, "read_committed").get(tp);
      check(hw == 11 && lso == 0, "with A open and B committed: HW %d (expected 11), LSO %d"
          + " (expected 0, A's first offset)", hw, lso);
      Properties p = Util.consumerProps(bootstrap, "lso-reader", null);
      p.put("isolation.level", "read_committed");
      try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
        c.assign(tps);
        c.seekToBeginning(tps);
        int read = 0;
        for (int i = 0; i < 5; i++) read += c.poll(Duration.ofMillis(200)).count();
        check(read == 0 && c.position(tp) == 0,
            "read_committed behind an open transaction read %d records, position %d", read,
            c.position(tp));
      }
      a.abortTransaction();
      awaitState(idA, TransactionState.COMPLETE_ABORT);
    }
    List<ConsumerRecord<String, String>> rc =
        Util.readAll(bootstrap, tps, 30_000, "read_committed");
    check(values(rc).equals(bValues), "read_committed after A aborted: %s, expected %s",
        values(rc), bValues);
    List<ConsumerRecord<String, String>> ru =
        Util.readAll(bootstrap, tps, 30_000, "read_uncommitted");
    check(ru.size() == 10, "read_uncommitted: %s, expected A's 5 and B's 5", values(ru));
    long end = endOffsets(tps, "read_committed").get(tp);
    check(end == 12, "after A's abort marker the LSO is %d, expected 12", end);
    Util.log("an open transaction held the LSO; its abort was filtered before B's commit");
  }

  /** PREFIX-in to PREFIX-out: KIP-447 consume-transform-produce with one aborted round. */
  private void consumeTransformProduce() throws Exception {
    String in = prefix + "-in";
    String out = prefix + "-out";
    String group = prefix + "-copier";
    String txid = prefix + "-copier";
    List<TopicPartition> inTps = Util.partitions(in, PARTITIONS);
    List<TopicPartition> outTps = Util.partitions(out, PARTITIONS);
    List<List<String>> input = perPartition();
    try (KafkaProducer<String, String> plain =
        new KafkaProducer<>(Util.producerProps(bootstrap, "copier-input"))) {
      for (int i = 0; i < COPY_RECORDS; i++) {
        plain.send(new ProducerRecord<>(in, i % PARTITIONS, "k" + i, "v" + i));
        input.get(i % PARTITIONS).add("copy-v" + i);
      }
      plain.flush();
    }

    Properties cp = Util.consumerProps(bootstrap, "copier", group);
    cp.put("isolation.level", "read_committed");
    cp.put("max.poll.records", "100");
    int txns = 0;
    int abortedRecords = 0;
    Set<String> copied = new HashSet<>();
    Map<TopicPartition, Long> committedSoFar = new TreeMap<>(Util::compare);
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp);
        KafkaProducer<String, String> producer =
            new KafkaProducer<>(txnProps("copier", txid))) {
      producer.initTransactions();
      consumer.subscribe(List.of(in));
      long deadline = System.currentTimeMillis() + 60_000;
      while (copied.size() < COPY_RECORDS) {
        check(System.currentTimeMillis() < deadline, "copied %d of %d records in 60 s",
            copied.size(), COPY_RECORDS);
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        if (records.isEmpty()) continue;
        producer.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        Map<TopicPartition, Long> firsts = new HashMap<>();
        for (ConsumerRecord<String, String> r : records) {
          TopicPartition tp = new TopicPartition(r.topic(), r.partition());
          producer.send(new ProducerRecord<>(out, r.partition(), r.key(), "copy-" + r.value()));
          firsts.putIfAbsent(tp, r.offset());
          offsets.put(tp, new OffsetAndMetadata(r.offset() + 1));
        }
        producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
        txns++;
        if (txns == 3) {
          producer.flush();
          // The offsets sent to the open transaction are not the group's until it commits.
          Map<TopicPartition, Long> seen = groupOffsets(group);
          check(seen.equals(committedSoFar), "with offsets %s pending in an open transaction,"
              + " the group's offsets are %s, expected %s", offsets, seen, committedSoFar);
          producer.abortTransaction();
          abortedRecords += records.count();
          firsts.forEach(consumer::seek);
          Util.log("aborted transaction %d (%d records); seeking back to %s", txns,
              records.count(), firsts);
          continue;
        }
        producer.commitTransaction();
        for (ConsumerRecord<String, String> r : records) {
          check(copied.add(r.value()), "%s was consumed again after its copy was committed",
              r.value());
        }
        offsets.forEach((tp, o) -> committedSoFar.put(tp, o.offset()));
      }
      awaitState(txid, TransactionState.COMPLETE_COMMIT);
    }
    Util.log("copied %d records in %d transactions (1 aborted, %d records)", copied.size(),
        txns, abortedRecords);
    check(abortedRecords > 0, "the aborted transaction copied nothing");

    Map<TopicPartition, Long> inEnd = endOffsets(inTps, "read_uncommitted");
    Map<TopicPartition, Long> groupOffsets = groupOffsets(group);
    check(groupOffsets.equals(inEnd), "the group's committed offsets %s, the input ends at %s",
        groupOffsets, inEnd);
    // A read_committed consumer asks for stable offsets (OffsetFetch require_stable).
    Properties rp = Util.consumerProps(bootstrap, "copier-restart", group);
    rp.put("isolation.level", "read_committed");
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(rp)) {
      Map<TopicPartition, OffsetAndMetadata> stable =
          c.committed(new HashSet<>(inTps), Duration.ofSeconds(30));
      for (TopicPartition tp : inTps) {
        check(stable.get(tp) != null && stable.get(tp).offset() == inEnd.get(tp),
            "committed() (require_stable) for %s: %s, expected %d", tp, stable.get(tp),
            inEnd.get(tp));
      }
    }
    List<ConsumerRecord<String, String>> rc =
        Util.readAll(bootstrap, outTps, 30_000, "read_committed");
    check(byPartition(rc).equals(input), "read_committed output (per partition) %s, expected %s",
        byPartition(rc), input);
    List<ConsumerRecord<String, String>> ru =
        Util.readAll(bootstrap, outTps, 30_000, "read_uncommitted");
    check(ru.size() == COPY_RECORDS + abortedRecords,
        "read_uncommitted output: %d records, expected %d copies + %d aborted", ru.size(),
        COPY_RECORDS, abortedRecords);
    summary.put("copied", copied.size());
    summary.put("copyTransactions", txns);
    summary.put("abortedCopies", abortedRecords);
    summary.put("groupOffsets", groupOffsets.values());
  }

  /** The group's committed offsets (the admin client's OffsetFetch: not require_stable). */
  private Map<TopicPartition, Long> groupOffsets(String group) throws Exception {
    Map<TopicPartition, OffsetAndMetadata> m =
        admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
    Map<TopicPartition, Long> offsets = new TreeMap<>(Util::compare);
    m.forEach((tp, o) -> {
      if (o != null) offsets.put(tp, o.offset());
    });
    return offsets;
  }

  /** PREFIX-fence: a second incarnation of a transactional id fences the first. */
  private void fencing() throws Exception {
    String topic = prefix + "-fence";
    String txid = prefix + "-fenced";
    List<TopicPartition> tps = Util.partitions(topic, PARTITIONS);
    List<String> live = new ArrayList<>();
    KafkaProducer<String, String> zombie = new KafkaProducer<>(txnProps("zombie", txid));
    Throwable commitError = null;
    String sendError = "none";
    short zombieEpoch;
    short liveEpoch;
    try {
      zombie.initTransactions();
      TransactionDescription first = describe(txid);
      zombieEpoch = (short) first.producerEpoch();
      zombie.beginTransaction();
      zombie.send(new ProducerRecord<>(topic, 0, "z", "zombie-0"));
      zombie.flush();
      try (KafkaProducer<String, String> second = new KafkaProducer<>(txnProps("live", txid))) {
        // Aborts the zombie's open transaction and bumps the epoch.
        second.initTransactions();
        TransactionDescription after = describe(txid);
        liveEpoch = (short) after.producerEpoch();
        check(after.producerId() == first.producerId() && liveEpoch > zombieEpoch,
            "the second initTransactions: producer %d epoch %d, the first had %d epoch %d",
            after.producerId(), liveEpoch, first.producerId(), zombieEpoch);
        second.beginTransaction();
        for (int i = 0; i < 5; i++) {
          second.send(new ProducerRecord<>(topic, i % PARTITIONS, "l", "live-" + i));
          live.add("live-" + i);
        }
        second.commitTransaction();

        // The zombie writes to a partition new to its transaction, then commits.
        Future<RecordMetadata> late = zombie.send(new ProducerRecord<>(topic, 1, "z", "zombie-1"));
        try {
          zombie.commitTransaction();
        } catch (Exception e) {
          commitError = e;
        }
        try {
          late.get();
        } catch (ExecutionException e) {
          sendError = e.getCause().getClass().getSimpleName();
        }
        Util.log("the zombie's commit threw %s; its late send failed with %s", commitError,
            sendError);
        check(commitError instanceof ProducerFencedException,
            "the fenced producer's commitTransaction threw %s, expected ProducerFencedException",
            commitError);

        // The live producer goes on.
        second.beginTransaction();
        second.send(new ProducerRecord<>(topic, 2, "l", "live-5"));
        live.add("live-5");
        second.commitTransaction();
        awaitState(txid, TransactionState.COMPLETE_COMMIT);
      }
    } finally {
      zombie.close(Duration.ZERO);
    }
    List<ConsumerRecord<String, String>> rc =
        Util.readAll(bootstrap, tps, 30_000, "read_committed");
    check(values(rc).equals(live), "read_committed after the fencing: %s, expected %s",
        values(rc), live);
    List<String> ru = values(Util.readAll(bootstrap, tps, 30_000, "read_uncommitted"));
    check(ru.contains("zombie-0") && !ru.contains("zombie-1") && ru.size() == live.size() + 1,
        "read_uncommitted after the fencing: %s (expected the live records and zombie-0)", ru);
    summary.put("zombieEpoch", zombieEpoch);
    summary.put("liveEpoch", liveEpoch);
    summary.put("zombieCommitError", commitError.getClass().getSimpleName());
    summary.put("zombieSendError", sendError);
  }
}
