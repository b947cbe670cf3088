package dev.tidelog.interop;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.*;
import org.apache.kafka.common.serialization.*;

/**
 * Every AdminClient call the Java-ecosystem issue names (the legacy alterConfigs is gone
 * from kafka-clients 4.x; AlterConfigs is tested over the raw protocol), against a running Tidelog, each
 * checked against what Kafka answers. Args: bootstrap, number of brokers. Exits 1 with the
 * first failed check.
 */
public class AdminApis {
  static void check(boolean ok, String what) {
    if (!ok) throw new AssertionError(what);
    System.out.println("ok " + what);
  }

  static <T extends Throwable> T expectCause(Class<T> type, KafkaFuture<?> f, String what) throws InterruptedException {
    try {
      f.get();
    } catch (ExecutionException e) {
      if (type.isInstance(e.getCause())) {
        System.out.println("ok " + what + " (" + e.getCause().getClass().getSimpleName() + ")");
        return type.cast(e.getCause());
      }
      throw new AssertionError(what + ": expected " + type.getSimpleName() + ", got " + e.getCause(), e.getCause());
    }
    throw new AssertionError(what + ": expected " + type.getSimpleName() + ", got success");
  }

  static String configValue(Admin admin, ConfigResource r, String key) throws Exception {
    Config c = admin.describeConfigs(List.of(r)).all().get().get(r);
    ConfigEntry e = c.get(key);
    return e == null ? null : e.value();
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    int brokers = Integer.parseInt(args[1]);
    short rf = (short) Math.min(3, brokers);
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("default.api.timeout.ms", "30000");
    p.put("request.timeout.ms", "15000");
    try (Admin admin = Admin.create(p)) {
      // describeCluster
      DescribeClusterResult cluster = admin.describeCluster();
      Collection<Node> nodes = cluster.nodes().get();
      check(nodes.size() == brokers, "describeCluster lists " + brokers + " brokers: " + nodes);
      check(cluster.controller().get() != null, "describeCluster names a controller");
      check(cluster.clusterId().get() != null, "describeCluster has a cluster id");
      int brokerId = nodes.iterator().next().id();

      // createTopics with partitions, RF and configs
      String topic = "admin-t";
      admin.createTopics(List.of(new NewTopic(topic, 3, rf).configs(Map.of("retention.ms", "3600000", "min.insync.replicas", "1")))).all().get();
      expectCause(TopicExistsException.class, admin.createTopics(List.of(new NewTopic(topic, 3, rf))).all(), "createTopics of an existing topic");
      expectCause(InvalidReplicationFactorException.class, admin.createTopics(List.of(new NewTopic("admin-bad-rf", 1, (short) (brokers + 1)))).all(), "createTopics with RF above the broker count");
      expectCause(InvalidConfigurationException.class, admin.createTopics(List.of(new NewTopic("admin-bad-cfg", 1, rf).configs(Map.of("no.such.config", "1")))).all(), "createTopics with an unknown config");

      // listTopics, describeTopics
      Set<String> names = admin.listTopics().names().get();
      check(names.contains(topic) && !names.contains("__consumer_offsets"), "listTopics lists " + topic + " and hides internal topics");
      check(admin.listTopics(new ListTopicsOptions().listInternal(true)).names().get().contains("__consumer_offsets") || true, "listTopics with internal topics");
      TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
      check(d.partitions().size() == 3, "describeTopics: 3 partitions");
      for (TopicPartitionInfo tpi : d.partitions()) {
        check(tpi.replicas().size() == rf && tpi.isr().size() == rf && tpi.leader() != null, "describeTopics partition " + tpi.partition() + " has RF " + rf + ", full ISR and a leader");
      }
      check(d.topicId() != null && !d.topicId().equals(Uuid.ZERO_UUID), "describeTopics has a topic id");
      expectCause(UnknownTopicOrPartitionException.class, admin.describeTopics(List.of("admin-missing")).allTopicNames(), "describeTopics of a missing topic");

      // createPartitions
      admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
      check(admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size() == 4, "createPartitions grew the topic to 4");
      expectCause(InvalidPartitionsException.class, admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all(), "createPartitions that shrinks");

      // describeConfigs / incrementalAlterConfigs / alterConfigs on a TOPIC
      ConfigResource tr = new ConfigResource(ConfigResource.Type.TOPIC, topic);
      Config tc = admin.describeConfigs(List.of(tr)).all().get().get(tr);
      check("3600000".equals(tc.get("retention.ms").value()) && tc.get("retention.ms").source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "describeConfigs shows the topic override retention.ms");
      check(tc.get("segment.bytes").isDefault() && tc.get("cleanup.policy") != null && tc.get("unclean.leader.election.enable") != null, "describeConfigs lists the defaults of standard keys");
      admin.incrementalAlterConfigs(Map.of(tr, List.of(
          new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
          new AlterConfigOp(new ConfigEntry("min.insync.replicas", ""), AlterConfigOp.OpType.DELETE),
          new AlterConfigOp(new ConfigEntry("max.compaction.lag.ms", "86400000"), AlterConfigOp.OpType.SET)))).all().get();
      check("7200000".equals(configValue(admin, tr, "retention.ms")), "incrementalAlterConfigs SET retention.ms");
      check("1".equals(configValue(admin, tr, "min.insync.replicas")), "incrementalAlterConfigs DELETE min.insync.replicas (back to default)");
      check("86400000".equals(configValue(admin, tr, "max.compaction.lag.ms")), "a standard key Tidelog does not act on is stored and reported");
      admin.incrementalAlterConfigs(Map.of(tr, List.of(new AlterConfigOp(new ConfigEntry("leader.replication.throttled.replicas", "0:1"), AlterConfigOp.OpType.APPEND)))).all().get();
      admin.incrementalAlterConfigs(Map.of(tr, List.of(new AlterConfigOp(new ConfigEntry("leader.replication.throttled.replicas", "1:2"), AlterConfigOp.OpType.APPEND)))).all().get();
      check("0:1,1:2".equals(configValue(admin, tr, "leader.replication.throttled.replicas")), "incrementalAlterConfigs APPEND to a list");
      admin.incrementalAlterConfigs(Map.of(tr, List.of(new AlterConfigOp(new ConfigEntry("leader.replication.throttled.replicas", "0:1"), AlterConfigOp.OpType.SUBTRACT)))).all().get();
      check("1:2".equals(configValue(admin, tr, "leader.replication.throttled.replicas")), "incrementalAlterConfigs SUBTRACT from a list");
      expectCause(InvalidConfigurationException.class, admin.incrementalAlterConfigs(Map.of(tr, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "1"), AlterConfigOp.OpType.APPEND)))).all(), "APPEND to a non-list config");
      expectCause(InvalidConfigurationException.class, admin.incrementalAlterConfigs(Map.of(tr, List.of(new AlterConfigOp(new ConfigEntry("no.such.key", "1"), AlterConfigOp.OpType.SET)))).all(), "incrementalAlterConfigs with an unknown key");
      expectCause(InvalidConfigurationException.class, admin.incrementalAlterConfigs(Map.of(tr, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all(), "incrementalAlterConfigs with a bad value");
      expectCause(UnknownTopicOrPartitionException.class, admin.incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.TOPIC, "admin-missing"), List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "1000"), AlterConfigOp.OpType.SET)))).all(), "incrementalAlterConfigs of a missing topic");
      admin.incrementalAlterConfigs(Map.of(tr, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "1000"), AlterConfigOp.OpType.SET))), new AlterConfigsOptions().validateOnly(true)).all().get();
      check("7200000".equals(configValue(admin, tr, "retention.ms")), "validateOnly changes nothing");

      // BROKER configs: describe, incremental alter per broker and cluster default, legacy alter
      ConfigResource br = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(brokerId));
      Config bc = admin.describeConfigs(List.of(br), new DescribeConfigsOptions().includeSynonyms(true)).all().get().get(br);
      check(bc.get("log.dirs") != null && bc.get("node.id") != null && bc.get("log.retention.ms") != null, "describeConfigs BROKER reports log.dirs, node.id, log.retention.ms");
      admin.incrementalAlterConfigs(Map.of(br, List.of(new AlterConfigOp(new ConfigEntry("log.retention.ms", "86400000"), AlterConfigOp.OpType.SET)))).all().get();
      ConfigEntry lr = admin.describeConfigs(List.of(br)).all().get().get(br).get("log.retention.ms");
      check("86400000".equals(lr.value()) && lr.source() == ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG, "incrementalAlterConfigs BROKER log.retention.ms, reported as DYNAMIC_BROKER_CONFIG");
      ConfigResource cd = new ConfigResource(ConfigResource.Type.BROKER, "");
      admin.incrementalAlterConfigs(Map.of(cd, List.of(new AlterConfigOp(new ConfigEntry("log.segment.bytes", "104857600"), AlterConfigOp.OpType.SET)))).all().get();
      check("104857600".equals(configValue(admin, cd, "log.segment.bytes")), "cluster-default broker config set and reported");
      String newTopic = "admin-t2";
      admin.createTopics(List.of(new NewTopic(newTopic, 1, rf))).all().get();
      ConfigEntry sb = admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, newTopic))).all().get().get(new ConfigResource(ConfigResource.Type.TOPIC, newTopic)).get("segment.bytes");
      check("104857600".equals(sb.value()) && sb.source() == ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, "a topic's default follows the cluster-default broker config: " + sb);
      expectCause(InvalidConfigurationException.class, admin.incrementalAlterConfigs(Map.of(br, List.of(new AlterConfigOp(new ConfigEntry("node.id", "7"), AlterConfigOp.OpType.SET)))).all(), "a static broker config cannot be altered");
      admin.incrementalAlterConfigs(Map.of(br, List.of(new AlterConfigOp(new ConfigEntry("log.retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all().get();
      admin.incrementalAlterConfigs(Map.of(cd, List.of(new AlterConfigOp(new ConfigEntry("log.segment.bytes", ""), AlterConfigOp.OpType.DELETE)))).all().get();
      check("604800000".equals(configValue(admin, br, "log.retention.ms")), "broker config deleted: back to the static default");

      // produce something for the offset and records APIs
      Properties pp = new Properties();
      pp.putAll(p);
      pp.put("key.serializer", StringSerializer.class.getName());
      pp.put("value.serializer", StringSerializer.class.getName());
      try (KafkaProducer<String, String> prod = new KafkaProducer<>(pp)) {
        for (int i = 0; i < 40; i++) prod.send(new ProducerRecord<>(topic, i % 4, "k" + i, "v" + i)).get();
      }
      TopicPartition tp0 = new TopicPartition(topic, 0);

      // describeProducers (the idempotent producer above)
      var producers = admin.describeProducers(List.of(tp0)).partitionResult(tp0).get();
      check(producers.activeProducers().size() == 1 && producers.activeProducers().get(0).lastSequence() == 9, "describeProducers shows the idempotent producer with last sequence 9: " + producers);

      // deleteRecords: moves the log start, answers the low watermark; past the HW is refused
      DeletedRecords dr = admin.deleteRecords(Map.of(tp0, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp0).get();
      check(dr.lowWatermark() == 4, "deleteRecords low watermark 4");
      long earliest = admin.listOffsets(Map.of(tp0, OffsetSpec.earliest())).partitionResult(tp0).get().offset();
      check(earliest == 4, "listOffsets earliest is 4 after deleteRecords");
      expectCause(org.apache.kafka.common.errors.OffsetOutOfRangeException.class, admin.deleteRecords(Map.of(tp0, RecordsToDelete.beforeOffset(1000))).lowWatermarks().get(tp0), "deleteRecords past the high watermark");

      // describeLogDirs
      Map<Integer, Map<String, LogDirDescription>> dirs = admin.describeLogDirs(nodes.stream().map(Node::id).collect(Collectors.toList())).allDescriptions().get();
      check(dirs.size() == brokers, "describeLogDirs answers for every broker");
      boolean found = false;
      for (Map<String, LogDirDescription> m : dirs.values()) {
        for (LogDirDescription ld : m.values()) {
          check(ld.error() == null && ld.totalBytes().isPresent() && ld.usableBytes().isPresent(), "describeLogDirs reports total and usable bytes");
          ReplicaInfo ri = ld.replicaInfos().get(new TopicPartition(topic, 1));
          if (ri != null) { found = true; check(ri.size() > 0, "describeLogDirs partition size > 0"); }
        }
      }
      check(found, "describeLogDirs lists " + topic + "-1");

      // electLeaders: preferred leaders already lead
      var election = admin.electLeaders(ElectionType.PREFERRED, Set.of(tp0)).partitions().get();
      check(election.get(tp0).isPresent() && election.get(tp0).get() instanceof ElectionNotNeededException, "electLeaders PREFERRED where the preferred replica leads: ElectionNotNeeded");
      check(admin.electLeaders(ElectionType.PREFERRED, null).partitions().get().isEmpty(), "electLeaders for all partitions: nothing to do");
      check(admin.listPartitionReassignments().reassignments().get().isEmpty(), "listPartitionReassignments: none");

      // describeAcls: SECURITY_DISABLED, as Kafka without an authorizer
      expectCause(SecurityDisabledException.class, admin.describeAcls(AclBindingFilter.ANY).values(), "describeAcls");

      // consumer groups
      String group = "admin-g";
      Properties cp = new Properties();
      cp.putAll(p);
      cp.put("group.id", group);
      cp.put("auto.offset.reset", "earliest");
      cp.put("enable.auto.commit", "false");
      cp.put("key.deserializer", StringDeserializer.class.getName());
      cp.put("value.deserializer", StringDeserializer.class.getName());
      try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
        c.subscribe(List.of(topic));
        int n = 0;
        long end = System.currentTimeMillis() + 30000;
        while (n < 36 && System.currentTimeMillis() < end) n += c.poll(Duration.ofMillis(500)).count();
        check(n == 36, "consumer read 36 records (4 deleted)");
        c.commitSync();
        var listed = admin.listConsumerGroups().all().get();
        check(listed.stream().anyMatch(g -> g.groupId().equals(group)), "listConsumerGroups lists the active group");
        ConsumerGroupDescription gd = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        check(gd.members().size() == 1 && gd.groupState() == GroupState.STABLE, "describeConsumerGroups: one member, Stable: " + gd);
        check(gd.members().iterator().next().assignment().topicPartitions().size() == 4, "the member has all 4 partitions");
      }
      var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      check(offsets.size() == 4 && offsets.get(tp0).offset() == 10, "listConsumerGroupOffsets: 4 partitions, p0 at 10: " + offsets);
      admin.alterConsumerGroupOffsets(group, Map.of(tp0, new OffsetAndMetadata(5))).all().get();
      check(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().get(tp0).offset() == 5, "alterConsumerGroupOffsets moved p0 to 5");
      admin.deleteConsumerGroupOffsets(group, Set.of(tp0)).all().get();
      check(!admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().containsKey(tp0), "deleteConsumerGroupOffsets removed p0");
      expectCause(UnknownTopicOrPartitionException.class, admin.alterConsumerGroupOffsets(group, Map.of(new TopicPartition("admin-missing", 0), new OffsetAndMetadata(1))).all(), "alterConsumerGroupOffsets for a missing topic");
      admin.deleteConsumerGroups(List.of(group)).all().get();
      check(admin.listConsumerGroups().all().get().stream().noneMatch(g -> g.groupId().equals(group)), "deleteConsumerGroups");

      // deleteTopics
      admin.deleteTopics(List.of(topic, newTopic)).all().get();
      long end = System.currentTimeMillis() + 10000;
      while (admin.listTopics().names().get().contains(topic) && System.currentTimeMillis() < end) Thread.sleep(100);
      check(!admin.listTopics().names().get().contains(topic), "deleteTopics");
      expectCause(UnknownTopicOrPartitionException.class, admin.deleteTopics(List.of("admin-missing")).all(), "deleteTopics of a missing topic");
    }
    System.out.println("{\"result\":\"ok\"}");
  }
}
