package dev.tidelog.interop;

import static dev.tidelog.interop.Util.check;

import java.time.Duration;
import java.util.*;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;

/**
 * Consumer groups of kafka-clients (classic protocol) sharing a topic of 6 partitions; every
 * member commits what it processed after each poll and in its revocation callback, so the
 * group as a whole must read every record exactly once, across rebalances and a restart.
 *
 * <p>Modes ({@code args: bootstrap topic mode}):
 * <ul>
 *   <li>{@code default}: the default assignors ([range, cooperative-sticky]: the group picks
 *       range, eager); {@code cooperative-sticky}: that assignor only. Three members get two
 *       partitions each; one closes (LeaveGroup) and the other two get three each (range:
 *       0-2 and 3-5; cooperative-sticky: each keeps its two without a revocation); they read
 *       part of a new batch and close; a new consumer of the group starts exactly at the
 *       committed offsets and reads the rest.
 *   <li>{@code static}: three static members ({@code group.instance.id}); one closes (a
 *       static member does not leave) and a new consumer with the same instance id rejoins
 *       within the session timeout: it gets the same partitions in the same generation, and
 *       the other two see no rebalance (KIP-345).
 * </ul>
 */
public final class Groups {
  private static final int PARTITIONS = 6;
  /** Records per partition in each produced batch. */
  private static final int BATCH = 20;

  private final String bootstrap;
  private final String topic;
  private final String mode;
  private final String group;
  private final List<TopicPartition> tps;
  /** "p@o" → value of every produced record. */
  private final Map<String, String> produced = new HashMap<>();
  /** "p@o" → names of the members that read it. */
  private final Map<String, List<String>> readBy = new HashMap<>();
  /** The last offset committed per partition (by whichever member owned it). */
  private final Map<TopicPartition, Long> committed = new HashMap<>();
  private int batches = 0;
  private int retriedCommits = 0;

  public static void main(String[] args) {
    Util.main("Groups", () -> new Groups(args[0], args[1], args[2]).run());
  }

  Groups(String bootstrap, String topic, String mode) {
    this.bootstrap = bootstrap;
    this.topic = topic;
    this.mode = mode;
    this.group = topic + "-" + mode;
    this.tps = Util.partitions(topic, PARTITIONS);
  }

  /** A group member: the consumer, what it owns, what it processed and rebalance counts. */
  final class Member implements ConsumerRebalanceListener {
    final String name;
    final KafkaConsumer<String, String> consumer;
    final Set<TopicPartition> owned = new TreeSet<>(Util::compare);
    /** Next offset to commit per partition (one past the last record processed). */
    final Map<TopicPartition, Long> processed = new HashMap<>();
    /** Where reading a newly assigned partition must start: the group's committed offset. */
    final Map<TopicPartition, Long> startAt = new HashMap<>();
    final List<TopicPartition> lost = new ArrayList<>();
    int callbacks = 0;
    int revokedPartitions = 0;
    int read = 0;

    Member(String name, String instanceId) {
      this.name = name;
      Properties p = Util.consumerProps(bootstrap, group + "-" + name, group);
      p.put("max.poll.records", "10");
      if (mode.equals("cooperative-sticky")) {
        p.put("partition.assignment.strategy", CooperativeStickyAssignor.class.getName());
      }
      if (instanceId != null) {
        p.put("group.instance.id", instanceId);
        // A closed static member stays in the group for the session timeout: room to rejoin.
        p.put("session.timeout.ms", "10000");
      }
      consumer = new KafkaConsumer<>(p);
      consumer.subscribe(List.of(topic), this);
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      callbacks++;
      owned.addAll(partitions);
      for (TopicPartition tp : partitions) {
        processed.remove(tp);
        startAt.put(tp, committed.getOrDefault(tp, 0L)); // 0: auto.offset.reset=earliest
      }
      Util.log("%s assigned %s, owns %s", name, Util.numbers(partitions), Util.numbers(owned));
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      callbacks++;
      revokedPartitions += partitions.size();
      // The callback is where the offsets of partitions about to move must be committed.
      commit(partitions, true);
      owned.removeAll(partitions);
      Util.log("%s revoked %s, owns %s", name, Util.numbers(partitions), Util.numbers(owned));
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> partitions) {
      callbacks++;
      lost.addAll(partitions);
      owned.removeAll(partitions);
      Util.log("%s lost %s", name, Util.numbers(partitions));
    }

    void checkNotLost() {
      check(lost.isEmpty(), "%s lost %s (its membership expired or was fenced)", name,
          Util.numbers(lost));
    }

    void poll() {
      ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
      checkNotLost();
      for (ConsumerRecord<String, String> r : records) {
        TopicPartition tp = new TopicPartition(r.topic(), r.partition());
        String pos = r.partition() + "@" + r.offset();
        check(owned.contains(tp), "%s read %s of a partition it does not own (%s)", name, pos,
            Util.numbers(owned));
        check(Objects.equals(produced.get(pos), r.value()), "%s read %s = %s, produced %s", name,
            pos, r.value(), produced.get(pos));
        Long start = startAt.remove(tp);
        if (start != null) {
          check(r.offset() == start, "%s started reading partition %d at %d, the group had"
              + " committed %d", name, r.partition(), r.offset(), start);
        } else {
          long next = processed.get(tp);
          check(r.offset() == next, "%s read %s after %d: a gap or a step back", name, pos,
              next - 1);
        }
        readBy.computeIfAbsent(pos, k -> new ArrayList<>()).add(name);
        processed.put(tp, r.offset() + 1);
        read++;
      }
      if (!records.isEmpty()) commit(owned, false);
    }

    /** Commits what was processed on {@code partitions} and not committed yet. */
    void commit(Collection<TopicPartition> partitions, boolean mustSucceed) {
      Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
      for (TopicPartition tp : partitions) {
        Long next = processed.get(tp);
        if (next != null && !next.equals(committed.get(tp))) {
          offsets.put(tp, new OffsetAndMetadata(next));
        }
      }
      if (offsets.isEmpty()) return;
      try {
        consumer.commitSync(offsets);
        offsets.forEach((tp, o) -> committed.put(tp, o.offset()));
      } catch (RebalanceInProgressException e) {
        // Retried by the next commit, or by the revocation callback if the partition moves.
        check(!mustSucceed, "%s: commit in the revocation callback failed: %s", name, e);
        retriedCommits++;
        Util.log("%s: commit deferred: %s", name, e.getMessage());
      }
    }

    int generation() {
      return consumer.groupMetadata().generationId();
    }

    String memberId() {
      return consumer.groupMetadata().memberId();
    }

    void close() {
      consumer.close();
      checkNotLost();
      Util.log("%s closed", name);
    }
  }

  /** Produces {@link #BATCH} records to each partition, remembering where they went. */
  void produce() throws Exception {
    int b = batches++;
    try (KafkaProducer<String, String> p =
        new KafkaProducer<>(Util.producerProps(bootstrap, group + "-producer"))) {
      List<Map.Entry<String, java.util.concurrent.Future<RecordMetadata>>> sends =
          new ArrayList<>();
      for (int i = 0; i < BATCH; i++) {
        for (TopicPartition tp : tps) {
          String value = "batch" + b + "-p" + tp.partition() + "-" + i;
          sends.add(Map.entry(value,
              p.send(new ProducerRecord<>(topic, tp.partition(), "k" + i, value))));
        }
      }
      for (var s : sends) {
        RecordMetadata md = s.getValue().get();
        produced.put(md.partition() + "@" + md.offset(), s.getKey());
      }
    }
    Util.log("produced batch %d (%d records per partition)", b, BATCH);
  }

  /** Polls the members round-robin until {@code done}, or fails after 45 s with {@code what}. */
  void pollUntil(List<Member> members, String what, BooleanSupplier done) {
    long deadline = System.currentTimeMillis() + 45_000;
    while (!done.getAsBoolean()) {
      check(System.currentTimeMillis() < deadline, "timed out waiting for %s: %s", what,
          describe(members));
      for (Member m : members) m.poll();
    }
  }

  String describe(List<Member> members) {
    StringJoiner j = new StringJoiner("; ");
    for (Member m : members) {
      j.add(m.name + " owns " + Util.numbers(m.owned) + " read " + m.read + " gen "
          + m.generation());
    }
    return j + "; records produced " + produced.size() + ", read " + readBy.size();
  }

  /** Each member owns {@code each} partitions, together all of them, none twice. */
  boolean balanced(List<Member> members, int each) {
    Set<TopicPartition> all = new HashSet<>();
    int total = 0;
    for (Member m : members) {
      if (m.owned.size() != each) return false;
      all.addAll(m.owned);
      total += m.owned.size();
    }
    return total == PARTITIONS && all.size() == PARTITIONS;
  }

  boolean allRead() {
    return readBy.keySet().containsAll(produced.keySet());
  }

  /** Every record read by the members exactly once. */
  void checkExactlyOnce() {
    List<String> missing = new ArrayList<>();
    List<String> twice = new ArrayList<>();
    for (String pos : produced.keySet()) {
      List<String> by = readBy.getOrDefault(pos, List.of());
      if (by.isEmpty()) missing.add(pos);
      if (by.size() > 1) twice.add(pos + " by " + by);
    }
    Collections.sort(missing);
    Collections.sort(twice);
    check(missing.isEmpty() && twice.isEmpty(), "%d records never read (%s), %d read twice (%s)",
        missing.size(), missing.subList(0, Math.min(10, missing.size())), twice.size(),
        twice.subList(0, Math.min(10, twice.size())));
  }

  String assignor() throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    try (Admin admin = Admin.create(p)) {
      ConsumerGroupDescription d =
          admin.describeConsumerGroups(List.of(group)).all().get().get(group);
      return d.partitionAssignor();
    }
  }

  Map<String, Object> run() throws Exception {
    return mode.equals("static") ? runStatic() : runDynamic();
  }

  Map<String, Object> runDynamic() throws Exception {
    produce();
    Member a = new Member("A", null);
    Member b = new Member("B", null);
    Member c = new Member("C", null);
    List<Member> three = List.of(a, b, c);
    pollUntil(three, "3 members with 2 partitions each reading batch 0",
        () -> balanced(three, 2) && allRead());
    String assignor = assignor();
    String expected = mode.equals("default") ? "range" : "cooperative-sticky";
    check(expected.equals(assignor), "the group uses assignor %s, expected %s", assignor,
        expected);
    if (mode.equals("default")) {
      // Range: members in member-id order (client ids A < B < C) get 0-1, 2-3, 4-5.
      checkOwns(a, 0, 1);
      checkOwns(b, 2, 3);
      checkOwns(c, 4, 5);
    }
    Set<TopicPartition> aBefore = new HashSet<>(a.owned);
    Set<TopicPartition> bBefore = new HashSet<>(b.owned);
    int aRevoked = a.revokedPartitions;
    int bRevoked = b.revokedPartitions;
    Util.log("3 members balanced: %s", describe(three));

    c.close();
    produce();
    List<Member> two = List.of(a, b);
    pollUntil(two, "2 members with 3 partitions each after C left, reading batch 1",
        () -> balanced(two, 3) && allRead());
    if (mode.equals("default")) {
      checkOwns(a, 0, 1, 2);
      checkOwns(b, 3, 4, 5);
    } else {
      // Cooperative sticky: C's partitions move, A's and B's stay put.
      check(a.owned.containsAll(aBefore) && b.owned.containsAll(bBefore)
          && a.revokedPartitions == aRevoked && b.revokedPartitions == bRevoked,
          "cooperative-sticky moved more than C's partitions: A %s -> %s, B %s -> %s,"
              + " revoked since: A %d, B %d", Util.numbers(aBefore), Util.numbers(a.owned),
          Util.numbers(bBefore), Util.numbers(b.owned), a.revokedPartitions - aRevoked,
          b.revokedPartitions - bRevoked);
    }
    Util.log("2 members balanced: %s", describe(two));

    // Read a part of the next batch, commit (after each poll), and close.
    produce();
    int target = a.read + b.read + 2 * BATCH;
    pollUntil(two, "A and B to read part of batch 2", () -> a.read + b.read >= target);
    a.close();
    b.close();
    Map<TopicPartition, Long> committedBefore = new TreeMap<>(Util::compare);
    committedBefore.putAll(committed);
    check(committedBefore.size() == PARTITIONS, "commits for %s only", committedBefore.keySet());
    long left = produced.size() - readBy.size();
    check(left > 0, "A and B read everything; nothing left to resume");

    // A new consumer of the group: OffsetFetch gives the commits, and it starts there.
    Member d = new Member("D", null);
    Map<TopicPartition, OffsetAndMetadata> fetched = d.consumer.committed(new HashSet<>(tps));
    for (TopicPartition tp : tps) {
      OffsetAndMetadata o = fetched.get(tp);
      check(o != null && o.offset() == committedBefore.get(tp),
          "the group's committed offset of %s is %s, committed %d", tp, o,
          committedBefore.get(tp));
    }
    pollUntil(List.of(d), "D to read the rest", this::allRead);
    for (int i = 0; i < 5; i++) d.poll(); // anything read again would show up now
    d.close();
    checkExactlyOnce();

    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("mode", mode);
    summary.put("assignor", assignor);
    summary.put("records", produced.size());
    summary.put("resumedFrom", committedBefore.values());
    summary.put("readAfterRestart", d.read);
    summary.put("deferredCommits", retriedCommits);
    return summary;
  }

  void checkOwns(Member m, Integer... partitions) {
    check(Util.numbers(m.owned).equals(List.of(partitions)), "%s owns %s, range gives %s",
        m.name, Util.numbers(m.owned), List.of(partitions));
  }

  Map<String, Object> runStatic() throws Exception {
    produce();
    List<Member> members = new ArrayList<>();
    for (int i = 0; i < 3; i++) members.add(new Member("S" + i, group + "-instance-" + i));
    pollUntil(members, "3 static members with 2 partitions each reading batch 0",
        () -> balanced(members, 2) && allRead());
    // Heartbeats come every second: give a pending rebalance time to show before the snapshot.
    long settle = System.currentTimeMillis() + 2500;
    pollUntil(members, "settling", () -> System.currentTimeMillis() > settle);
    check(balanced(members, 2), "static members not balanced: %s", describe(members));
    Member s0 = members.get(0);
    Member s1 = members.get(1);
    Member s2 = members.get(2);
    int generation = s0.generation();
    check(s1.generation() == generation && s2.generation() == generation,
        "members in generations %d, %d, %d", generation, s1.generation(), s2.generation());
    Set<TopicPartition> s1Owned = new TreeSet<>(Util::compare);
    s1Owned.addAll(s1.owned);
    String s1MemberId = s1.memberId();
    int s0Callbacks = s0.callbacks;
    int s2Callbacks = s2.callbacks;
    Util.log("static members balanced in generation %d: %s", generation, describe(members));

    // A static member's close does not leave the group; the same instance id comes back.
    s1.close();
    produce();
    Member s1b = new Member("S1'", group + "-instance-1");
    List<Member> now = List.of(s0, s1b, s2);
    pollUntil(now, "S1' to rejoin and everything to be read",
        () -> !s1b.owned.isEmpty() && allRead());
    long settle2 = System.currentTimeMillis() + 2500;
    pollUntil(now, "settling", () -> System.currentTimeMillis() > settle2);
    check(s1b.owned.equals(s1Owned), "the rejoined static member got %s, it had %s",
        Util.numbers(s1b.owned), Util.numbers(s1Owned));
    check(!s1b.memberId().equals(s1MemberId), "the rejoined static member kept member id %s",
        s1MemberId);
    check(s1b.generation() == generation && s0.generation() == generation
        && s2.generation() == generation,
        "a static rejoin must not rebalance: generation %d became S0 %d, S1' %d, S2 %d",
        generation, s0.generation(), s1b.generation(), s2.generation());
    check(s0.callbacks == s0Callbacks && s2.callbacks == s2Callbacks,
        "S0 or S2 saw a rebalance (callbacks %d -> %d, %d -> %d)", s0Callbacks, s0.callbacks,
        s2Callbacks, s2.callbacks);
    List<Integer> rejoinedWith = Util.numbers(s1b.owned);
    for (Member m : now) m.close();
    checkExactlyOnce();

    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("mode", mode);
    summary.put("generation", generation);
    summary.put("rejoinedWith", rejoinedWith);
    summary.put("records", produced.size());
    summary.put("deferredCommits", retriedCommits);
    return summary;
  }
}
