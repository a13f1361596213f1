#include "services/runtime/kafka/client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "librdkafka/rdkafka.h"
#include "librdkafka/rdkafkacpp.h"
#include "services/runtime/server/log.h"

namespace helpline::kafka {

void AddKafkaKeys(server::ConfigSchema& schema) {
  schema.String("kafka.bootstrap_servers", std::nullopt, "host:port[,host:port...] of the brokers")
      .OneOf("kafka.security_protocol", "plaintext", {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"},
             "how clients talk to the brokers")
      .OneOf("kafka.sasl_mechanism", "", {"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
             "SASL mechanism when the protocol is sasl_*")
      .String("kafka.sasl_username", "", "SASL user name")
      .Secret("kafka.sasl_password", "SASL password (give it through the environment)")
      .String("kafka.ssl_ca_location", "", "PEM file of the CA that signed the brokers' certificates")
      .String("kafka.client_id", "helpline", "client.id the brokers see in their logs and quotas")
      .String("kafka.debug", "",
              "librdkafka debug contexts to log (e.g. 'cgrp,eos,broker'), at log level debug; "
              "empty: none")
      .OneOf("kafka.group_protocol", "consumer", {"consumer", "classic"},
             "consumer groups: KIP-848 'consumer' (brokers >= 4.0) or 'classic' "
             "(cooperative-sticky); both move only the partitions that change owner");
}

std::string LibraryVersion() { return RdKafka::version_str(); }

ClientConfig ClientConfigFromConfig(const server::Config& config) {
  ClientConfig client;
  client.bootstrap_servers = config.GetString("kafka.bootstrap_servers");
  client.properties["security.protocol"] = config.GetString("kafka.security_protocol");
  client.properties["client.id"] = config.GetString("kafka.client_id");
  auto set_if_given = [&](const char* property, const char* key) {
    if (!config.GetString(key).empty()) client.properties[property] = config.GetString(key);
  };
  set_if_given("sasl.mechanisms", "kafka.sasl_mechanism");
  set_if_given("sasl.username", "kafka.sasl_username");
  set_if_given("sasl.password", "kafka.sasl_password");
  set_if_given("ssl.ca.location", "kafka.ssl_ca_location");
  set_if_given("debug", "kafka.debug");
  client.group_protocol = config.GetString("kafka.group_protocol") == "classic"
                              ? GroupProtocol::kClassic
                              : GroupProtocol::kConsumer;
  return client;
}

std::optional<std::string> Record::HeaderValue(const std::string& name) const {
  for (const Header& header : headers) {
    if (header.key == name) return header.value;
  }
  return std::nullopt;
}

namespace internal {
namespace {

// librdkafka's own log lines and client-level errors, into the JSON log.
class LogEvents : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_LOG: {
        log::Level level = event.severity() <= RdKafka::Event::EVENT_SEVERITY_ERROR ? log::Level::kError
                           : event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING
                               ? log::Level::kWarn
                               : log::Level::kDebug;
        log::Write(level, event.str(), {{"component", "librdkafka"}, {"facility", event.fac()}});
        break;
      }
      case RdKafka::Event::EVENT_ERROR:
        log::Write(event.fatal() ? log::Level::kError : log::Level::kWarn, event.str(),
                   {{"component", "librdkafka"}, {"error", RdKafka::err2str(event.err())}});
        break;
      default:
        break;
    }
  }
};

}  // namespace

std::unique_ptr<RdKafka::Conf> NewGlobalConf() {
  return std::unique_ptr<RdKafka::Conf>(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
}

absl::Status BuildConf(const ClientConfig& client,
                       const std::map<std::string, std::string>& overrides, RdKafka::Conf* conf) {
  std::map<std::string, std::string> properties = client.properties;
  properties["bootstrap.servers"] = client.bootstrap_servers;
  for (const auto& [name, value] : overrides) properties[name] = value;
  std::string error;
  static LogEvents* log_events = new LogEvents();
  conf->set("event_cb", static_cast<RdKafka::EventCb*>(log_events), error);
  for (const auto& [name, value] : properties) {
    if (conf->set(name, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", name, ": ", error));
    }
  }
  return absl::OkStatus();
}

int ToMillis(absl::Duration duration) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(duration)));
}

BrokerWatch::BrokerWatch(std::string bootstrap_servers, absl::Duration look_every)
    : bootstrap_servers_(std::move(bootstrap_servers)), look_every_(look_every) {}

void BrokerWatch::Check(RdKafka::Handle& handle) {
  if (!mutex_.TryLock()) return;  // another thread is looking
  const bool rebootstrap = NoBrokerTwice(handle);
  mutex_.Unlock();
  if (!rebootstrap) return;
  rd_kafka_brokers_add(handle.c_ptr(), bootstrap_servers_.c_str());
  // Looking again starts a connection to one of them now.
  const struct rd_kafka_metadata* metadata = nullptr;
  rd_kafka_metadata(handle.c_ptr(), 0, nullptr, &metadata, 0);
  if (metadata != nullptr) rd_kafka_metadata_destroy(metadata);
  log::Warn("no Kafka broker to ask; bootstrapping again",
            {{"client", handle.name()}, {"bootstrap_servers", bootstrap_servers_}});
}

bool BrokerWatch::NoBrokerTwice(RdKafka::Handle& handle) {
  const absl::Time now = absl::Now();
  if (now < next_look_) return false;
  next_look_ = now + look_every_;
  // With no wait, the request only goes out when some broker is connected;
  // TRANSPORT means none is (and none is left to connect to, if it lasts).
  const struct rd_kafka_metadata* metadata = nullptr;
  rd_kafka_resp_err_t looked = rd_kafka_metadata(handle.c_ptr(), 0, nullptr, &metadata, 0);
  if (metadata != nullptr) rd_kafka_metadata_destroy(metadata);
  if (looked != RD_KAFKA_RESP_ERR__TRANSPORT) {
    looks_without_broker_ = 0;
    return false;
  }
  if (++looks_without_broker_ < 2 || now < next_bootstrap_) return false;
  next_bootstrap_ = now + absl::Minutes(2);
  return true;
}

}  // namespace internal
}  // namespace helpline::kafka
