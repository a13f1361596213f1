#include "services/runtime/kafka/admin.h"

#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "librdkafka/rdkafka.h"
#include "librdkafka/rdkafkacpp.h"

namespace helpline::kafka {
namespace {

// Runs one admin request on a temporary queue and returns its result event.
struct EventDeleter {
  void operator()(rd_kafka_event_t* event) const { rd_kafka_event_destroy(event); }
};
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

absl::StatusOr<EventPtr> AwaitResult(rd_kafka_queue_t* queue, absl::Duration timeout,
                                     const char* operation) {
  EventPtr event(rd_kafka_queue_poll(queue, internal::ToMillis(timeout + absl::Seconds(5))));
  rd_kafka_queue_destroy(queue);
  if (event == nullptr) {
    return absl::DeadlineExceededError(absl::StrCat(operation, ": no answer from the cluster"));
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat(operation, ": ", rd_kafka_event_error_string(event.get())));
  }
  return event;
}

rd_kafka_AdminOptions_t* NewOptions(rd_kafka_t* handle, rd_kafka_admin_op_t op,
                                    absl::Duration timeout) {
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(handle, op);
  char error[256];
  rd_kafka_AdminOptions_set_request_timeout(options, internal::ToMillis(timeout), error,
                                            sizeof error);
  rd_kafka_AdminOptions_set_operation_timeout(options, internal::ToMillis(timeout), error,
                                              sizeof error);
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Admin>> Admin::Create(const ClientConfig& client) {
  std::unique_ptr<RdKafka::Conf> conf = internal::NewGlobalConf();
  if (absl::Status status = internal::BuildConf(client, {}, conf.get()); !status.ok()) {
    return status;
  }
  std::string error;
  std::unique_ptr<Admin> admin(new Admin());
  admin->handle_.reset(RdKafka::Producer::create(conf.get(), error));
  if (admin->handle_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create a Kafka client: ", error));
  }
  return admin;
}

Admin::~Admin() = default;

absl::Status Admin::WaitUntilReachable(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string last_error = "no attempt";
  while (absl::Now() < deadline) {
    RdKafka::Metadata* raw = nullptr;
    RdKafka::ErrorCode code = handle_->metadata(
        /*all_topics=*/false, nullptr, &raw,
        std::max(100, internal::ToMillis(std::min(deadline - absl::Now(), absl::Seconds(2)))));
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
    if (code == RdKafka::ERR_NO_ERROR && !metadata->brokers()->empty()) return absl::OkStatus();
    last_error = RdKafka::err2str(code);
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::UnavailableError(absl::StrCat("Kafka not reachable: ", last_error));
}

absl::StatusOr<std::map<std::string, int>> Admin::ListTopics(absl::Duration timeout) {
  RdKafka::Metadata* raw = nullptr;
  RdKafka::ErrorCode code =
      handle_->metadata(/*all_topics=*/true, nullptr, &raw, internal::ToMillis(timeout));
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("list topics: ", RdKafka::err2str(code)));
  }
  std::map<std::string, int> topics;
  for (const RdKafka::TopicMetadata* topic : *metadata->topics()) {
    if (topic->err() == RdKafka::ERR_NO_ERROR) {
      topics[topic->topic()] = static_cast<int>(topic->partitions()->size());
    }
  }
  return topics;
}

absl::StatusOr<int> Admin::PartitionCount(const std::string& topic, absl::Duration timeout) {
  absl::StatusOr<std::map<std::string, int>> topics = ListTopics(timeout);
  if (!topics.ok()) return topics.status();
  auto found = topics->find(topic);
  if (found == topics->end()) {
    return absl::FailedPreconditionError(absl::StrCat("topic ", topic, " does not exist"));
  }
  return found->second;
}

absl::StatusOr<int> PartitionCount(const ClientConfig& client, const std::string& topic) {
  absl::StatusOr<std::unique_ptr<Admin>> admin = Admin::Create(client);
  if (!admin.ok()) return admin.status();
  return (*admin)->PartitionCount(topic, absl::Seconds(30));
}

bool Admin::LeadersKnown(const std::vector<std::string>& topics) {
  RdKafka::Metadata* raw = nullptr;
  RdKafka::ErrorCode code = handle_->metadata(/*all_topics=*/true, nullptr, &raw, 5000);
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  if (code != RdKafka::ERR_NO_ERROR) return false;
  size_t ready = 0;
  for (const RdKafka::TopicMetadata* topic : *metadata->topics()) {
    if (std::find(topics.begin(), topics.end(), topic->topic()) == topics.end()) continue;
    if (topic->err() != RdKafka::ERR_NO_ERROR || topic->partitions()->empty()) return false;
    for (const RdKafka::PartitionMetadata* partition : *topic->partitions()) {
      if (partition->leader() < 0 || partition->err() != RdKafka::ERR_NO_ERROR) return false;
    }
    ++ready;
  }
  return ready == topics.size();
}

absl::StatusOr<std::vector<std::string>> Admin::CreateTopics(const std::vector<TopicSpec>& topics,
                                                             absl::Duration timeout) {
  absl::StatusOr<std::map<std::string, int>> existing = ListTopics(timeout);
  if (!existing.ok()) return existing.status();

  std::vector<const TopicSpec*> to_check;  // exist already: their partition count must match
  std::vector<rd_kafka_NewTopic_t*> requests;
  for (const TopicSpec& topic : topics) {
    if (existing->contains(topic.name)) {
      to_check.push_back(&topic);
      continue;
    }
    char error[512];
    rd_kafka_NewTopic_t* request = rd_kafka_NewTopic_new(
        topic.name.c_str(), topic.partitions, topic.replication_factor, error, sizeof error);
    if (request == nullptr) {
      rd_kafka_NewTopic_destroy_array(requests.data(), requests.size());
      return absl::InvalidArgumentError(absl::StrCat("topic ", topic.name, ": ", error));
    }
    for (const auto& [name, value] : topic.configs) {
      rd_kafka_NewTopic_set_config(request, name.c_str(), value.c_str());
    }
    requests.push_back(request);
  }

  std::vector<std::string> created;
  if (!requests.empty()) {
    rd_kafka_t* handle = handle_->c_ptr();
    rd_kafka_AdminOptions_t* options = NewOptions(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
    rd_kafka_queue_t* queue = rd_kafka_queue_new(handle);
    rd_kafka_CreateTopics(handle, requests.data(), requests.size(), options, queue);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy_array(requests.data(), requests.size());
    absl::StatusOr<EventPtr> event = AwaitResult(queue, timeout, "create topics");
    if (!event.ok()) return event.status();

    size_t count = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(event->get()), &count);
    std::vector<std::string> failures;
    for (size_t i = 0; i < count; ++i) {
      rd_kafka_resp_err_t code = rd_kafka_topic_result_error(results[i]);
      std::string name = rd_kafka_topic_result_name(results[i]);
      if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
        created.push_back(name);
      } else if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        // Created meanwhile by someone else, or too new for our metadata.
        for (const TopicSpec& topic : topics) {
          if (topic.name == name) to_check.push_back(&topic);
        }
      } else {
        const char* why = rd_kafka_topic_result_error_string(results[i]);
        failures.push_back(absl::StrCat(name, ": ", why ? why : rd_kafka_err2str(code)));
      }
    }
    if (!failures.empty()) {
      return absl::UnavailableError(
          absl::StrCat("create topics: ", absl::StrJoin(failures, "; ")));
    }
  }

  // Created means usable: wait until the new topics are in the metadata
  // that clients get, or a producer or consumer right after us finds none.
  absl::Time deadline = absl::Now() + timeout;
  while (!created.empty() && !LeadersKnown(created) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  existing = ListTopics(timeout);
  if (!existing.ok()) return existing.status();

  std::vector<std::string> mismatched;
  for (const TopicSpec* topic : to_check) {
    auto found = existing->find(topic->name);
    while (found == existing->end() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
      existing = ListTopics(timeout);
      if (!existing.ok()) return existing.status();
      found = existing->find(topic->name);
    }
    if (found == existing->end()) {
      return absl::UnavailableError(absl::StrCat(topic->name, " exists but has no metadata"));
    }
    if (found->second != topic->partitions) {
      mismatched.push_back(absl::StrCat(topic->name, " has ", found->second,
                                        " partitions, declared ", topic->partitions));
    }
  }
  if (!mismatched.empty()) return absl::FailedPreconditionError(absl::StrJoin(mismatched, "; "));
  return created;
}

namespace {

std::string AclKey(const std::string& principal, int resource, int pattern, const std::string& name,
                   int operation) {
  return absl::StrCat(principal, "|", resource, "|", pattern, "|", name, "|", operation);
}

rd_kafka_ResourceType_t ResourceOf(const AclBinding& acl) {
  switch (acl.resource) {
    case AclBinding::Resource::kGroup:
      return RD_KAFKA_RESOURCE_GROUP;
    case AclBinding::Resource::kTransactionalId:
      return RD_KAFKA_RESOURCE_TRANSACTIONAL_ID;
    case AclBinding::Resource::kTopic:
      break;
  }
  return RD_KAFKA_RESOURCE_TOPIC;
}

rd_kafka_ResourcePatternType_t PatternOf(const AclBinding& acl) {
  return acl.prefixed ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED : RD_KAFKA_RESOURCE_PATTERN_LITERAL;
}

rd_kafka_AclOperation_t OperationOf(const AclBinding& acl) {
  return acl.operation == AclBinding::Operation::kRead ? RD_KAFKA_ACL_OPERATION_READ
                                                       : RD_KAFKA_ACL_OPERATION_WRITE;
}

// Every ACL the broker answers with (its authorizer's), as AclKey strings.
absl::StatusOr<std::set<std::string>> DescribeAllAcls(rd_kafka_t* handle, absl::Duration timeout) {
  char error[512];
  rd_kafka_AclBindingFilter_t* filter = rd_kafka_AclBindingFilter_new(
      RD_KAFKA_RESOURCE_ANY, nullptr, RD_KAFKA_RESOURCE_PATTERN_ANY, nullptr, nullptr,
      RD_KAFKA_ACL_OPERATION_ANY, RD_KAFKA_ACL_PERMISSION_TYPE_ANY, error, sizeof error);
  if (filter == nullptr) return absl::InternalError(absl::StrCat("describe ACLs: ", error));
  rd_kafka_AdminOptions_t* options = NewOptions(handle, RD_KAFKA_ADMIN_OP_DESCRIBEACLS, timeout);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(handle);
  rd_kafka_DescribeAcls(handle, filter, options, queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_AclBinding_destroy(filter);
  absl::StatusOr<EventPtr> event = AwaitResult(queue, timeout, "describe ACLs");
  if (!event.ok()) return event.status();
  size_t count = 0;
  const rd_kafka_AclBinding_t** found =
      rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(event->get()), &count);
  std::set<std::string> keys;
  for (size_t i = 0; i < count; ++i) {
    keys.insert(AclKey(rd_kafka_AclBinding_principal(found[i]), rd_kafka_AclBinding_restype(found[i]),
                       rd_kafka_AclBinding_resource_pattern_type(found[i]),
                       rd_kafka_AclBinding_name(found[i]), rd_kafka_AclBinding_operation(found[i])));
  }
  return keys;
}

}  // namespace

absl::Status Admin::CreateAcls(const std::vector<AclBinding>& acls, absl::Duration timeout) {
  if (acls.empty()) return absl::OkStatus();
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<rd_kafka_AclBinding_t*> requests;
  absl::Cleanup destroy = [&] { rd_kafka_AclBinding_destroy_array(requests.data(), requests.size()); };
  for (const AclBinding& acl : acls) {
    char error[512];
    rd_kafka_AclBinding_t* request = rd_kafka_AclBinding_new(
        ResourceOf(acl), acl.name.c_str(), PatternOf(acl), acl.principal.c_str(), "*",
        OperationOf(acl), RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, error, sizeof error);
    if (request == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("ACL \"", Describe(acl), "\": ", error));
    }
    requests.push_back(request);
  }
  rd_kafka_t* handle = handle_->c_ptr();
  rd_kafka_AdminOptions_t* options = NewOptions(handle, RD_KAFKA_ADMIN_OP_CREATEACLS, timeout);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(handle);
  rd_kafka_CreateAcls(handle, requests.data(), requests.size(), options, queue);
  rd_kafka_AdminOptions_destroy(options);
  absl::StatusOr<EventPtr> event = AwaitResult(queue, timeout, "create ACLs");
  if (!event.ok()) return event.status();
  size_t count = 0;
  const rd_kafka_acl_result_t** results =
      rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(event->get()), &count);
  if (count != acls.size()) {
    return absl::UnavailableError(
        absl::StrCat("create ACLs: ", count, " results for ", acls.size(), " rules"));
  }
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_error_t* error = rd_kafka_acl_result_error(results[i]);
    if (error == nullptr) continue;
    std::string message = absl::StrCat("create ACL \"", Describe(acls[i]), "\": ",
                                       rd_kafka_error_string(error));
    if (rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
      return absl::PermissionDeniedError(message);
    }
    return absl::UnavailableError(message);
  }
  // The controller has them; a client allowed by them right after must find
  // them in the broker's authorizer too (a broker just started applies them
  // a moment later, and a producer refused its id then stays broken).
  size_t missing = acls.size();
  while (true) {
    absl::StatusOr<std::set<std::string>> described =
        DescribeAllAcls(handle, std::max(deadline - absl::Now(), absl::Seconds(1)));
    if (described.ok()) {
      missing = 0;
      for (const AclBinding& acl : acls) {
        missing += described->contains(AclKey(acl.principal, ResourceOf(acl), PatternOf(acl),
                                              acl.name, OperationOf(acl)))
                       ? 0
                       : 1;
      }
      if (missing == 0) return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      std::string why;
      if (!described.ok()) why = absl::StrCat(" (", described.status().message(), ")");
      if (described.ok() && described->empty()) {
        why = " (the broker describes no ACL at all: may this principal describe them?)";
      }
      return absl::UnavailableError(absl::StrCat("create ACLs: ", missing, " of ", acls.size(),
                                                 " not in effect on the broker yet", why));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status Admin::DeleteTopics(const std::vector<std::string>& names, absl::Duration timeout) {
  if (names.empty()) return absl::OkStatus();
  std::vector<rd_kafka_DeleteTopic_t*> requests;
  for (const std::string& name : names) requests.push_back(rd_kafka_DeleteTopic_new(name.c_str()));
  rd_kafka_t* handle = handle_->c_ptr();
  rd_kafka_AdminOptions_t* options = NewOptions(handle, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(handle);
  rd_kafka_DeleteTopics(handle, requests.data(), requests.size(), options, queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_DeleteTopic_destroy_array(requests.data(), requests.size());
  absl::StatusOr<EventPtr> event = AwaitResult(queue, timeout, "delete topics");
  if (!event.ok()) return event.status();
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_DeleteTopics_result_topics(
      rd_kafka_event_DeleteTopics_result(event->get()), &count);
  std::vector<std::string> failures;
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t code = rd_kafka_topic_result_error(results[i]);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      failures.push_back(absl::StrCat(rd_kafka_topic_result_name(results[i]), ": ",
                                      rd_kafka_err2str(code)));
    }
  }
  if (!failures.empty()) {
    return absl::UnavailableError(absl::StrCat("delete topics: ", absl::StrJoin(failures, "; ")));
  }
  return absl::OkStatus();
}

absl::Status Admin::AlterTopicConfig(const std::string& topic,
                                     const std::map<std::string, std::string>& configs,
                                     absl::Duration timeout) {
  rd_kafka_t* handle = handle_->c_ptr();
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  for (const auto& [name, value] : configs) {
    std::unique_ptr<rd_kafka_error_t, void (*)(rd_kafka_error_t*)> error(
        rd_kafka_ConfigResource_add_incremental_config(resource, name.c_str(),
                                                       RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                                                       value.c_str()),
        rd_kafka_error_destroy);
    if (error != nullptr) {
      rd_kafka_ConfigResource_destroy(resource);
      return absl::InvalidArgumentError(absl::StrCat(topic, " ", name, ": ",
                                                     rd_kafka_error_string(error.get())));
    }
  }
  rd_kafka_AdminOptions_t* options =
      NewOptions(handle, RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS, timeout);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(handle);
  rd_kafka_IncrementalAlterConfigs(handle, &resource, 1, options, queue);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_ConfigResource_destroy(resource);
  absl::StatusOr<EventPtr> event = AwaitResult(queue, timeout, "alter topic config");
  if (!event.ok()) return event.status();
  size_t count = 0;
  const rd_kafka_ConfigResource_t** results = rd_kafka_IncrementalAlterConfigs_result_resources(
      rd_kafka_event_IncrementalAlterConfigs_result(event->get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_ConfigResource_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InvalidArgumentError(absl::StrCat(
          "alter config of ", topic, ": ", rd_kafka_ConfigResource_error_string(results[i])));
    }
  }
  return absl::OkStatus();
}

}  // namespace helpline::kafka
