#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/impl/service_type.h"
#include "services/runtime/auth/identity_jwks.h"
#include "services/runtime/core/clock.h"
#include "services/runtime/eventsourcing/closed_accounts.h"
#include "services/runtime/eventsourcing/domain.h"
#include "services/runtime/eventsourcing/event_feed.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/eventsourcing/processor.h"
#include "services/runtime/eventsourcing/processor_metrics.h"
#include "services/runtime/eventsourcing/reactor.h"
#include "services/runtime/eventsourcing/topics.h"
#include "services/runtime/kafka/client.h"
#include "services/runtime/kafka/shared_clients.h"
#include "services/runtime/privacy/personal_text.h"
#include "services/runtime/server/config.h"
#include "services/runtime/server/loop.h"
#include "services/runtime/server/parts.h"
#include "services/runtime/server/server.h"

namespace helpline::es {

// Adds processor.* keys (the replica's name) to a service's schema.
void AddProcessorKeys(server::ConfigSchema& schema);
// The keys every event-sourced service has: server, Kafka, processor,
// clock, token verification and topics.prefix.
void AddServiceKeys(server::ConfigSchema& schema);
// "currency": the deployment's one currency (ISO 4217), for the services
// that deal in money (catalog's prices, matching's budgets, payments' ledger).
void AddCurrencyKey(server::ConfigSchema& schema);
// Its value; a code that is not three capital letters ends the process
// (status 2) with a log line.
std::string CurrencyOrExit(const server::Config& config);

// A reaction and the events it reacts to: `service`'s ("catalog"), this
// service's own included. `name` ("from-catalog") names its command ids.
struct ReactionTo {
  std::string name;
  std::string service;
  const Reaction* reaction = nullptr;
};

// What every event-sourced service's main builds the same way, and the list
// of its parts. A main makes its read models, reactions and loops, hands
// them to the host, and calls Run:
//
//   es::ServiceHost host("sessions", Schema(), argc, argv, SessionsType());
//   SessionsReadModel read_model;
//   host.OwnEvents<v1::SessionsEvent>(read_model);
//   host.React({{"from-matching", "matching", &from_matching}});
//   SessionsService service(options, {host.front(), read_model, host.Callers(20)});
//   return host.Run({&service});
//
// Run starts, in order: the parts added with AddPart (caches, read
// models), the processor, the reactions, the front and the gRPC server; once
// every part is ready (read models caught up, partitions rebuilt), the loops
// added with AddLoop. It serves while every part and loop is ready, and on
// SIGTERM stops the server and then everything in reverse.
class ServiceHost {
 public:
  // Loads the config from the command line (a bad one ends the process,
  // status 2) and starts logging; a bad clock or Kafka config ends it too.
  ServiceHost(const std::string& service, const server::ConfigSchema& schema, int argc,
              char** argv, const AggregateType& type);
  ~ServiceHost();

  // First, so that no thread starts before the signals are routed.
  server::ShutdownSignal shutdown;
  const std::string service;
  const server::Config config;
  const kafka::ClientConfig client;
  const SystemClock clock;
  // Real time, whatever clock.rate says: what tokens other parties verify carry.
  const SystemClock wall_clock;
  // Prepended to every topic and consumer group name (tests).
  const std::string prefix;
  const ServiceTopics topics;
  // The producer and reader every feed, front and reactor of the process uses.
  const std::unique_ptr<kafka::SharedClients> kafka;
  server::GrpcServer server;
  ProcessorMetrics processor_metrics;
  // The read models' feeds' and the reactor's lag and dead letters.
  ConsumerMetrics consumer_metrics;
  Processor processor;
  // Accounts identity deleted; a part once Callers or PersonalTexts uses it.
  ClosedAccounts closed_accounts;

  // The read model of this service's events; the front waits on it for a
  // write's events. `before_apply` as in EventFeedOptions. Call once.
  template <class Event>
  EventFeed& OwnEvents(TypedProjection<Event>& projection,
                       std::function<absl::Status(google::protobuf::Message&)> before_apply = {}) {
    EventFeed& feed = Feed(topics.events, "read-model", projection,
                           [] { return std::make_unique<Event>(); }, std::move(before_apply));
    own_events_ = &feed;
    return feed;
  }
  // A read model of `other` service's events.
  template <class Event>
  EventFeed& EventsOf(const std::string& other, TypedProjection<Event>& projection) {
    return Feed(ServiceTopics::For(other, prefix).events, other, projection,
                [] { return std::make_unique<Event>(); }, {});
  }
  // A read model of any other topic of records of type `Record` (a keys
  // topic); `name` for logs and dead letters.
  template <class Record>
  EventFeed& RecordsOf(const std::string& topic, const std::string& name, Projection& projection) {
    return Feed(topic, name, projection, [] { return std::make_unique<Record>(); }, {});
  }
  // This service's reactions, one consumer group ("<service>.reactions").
  void React(const std::vector<ReactionTo>& reactions);
  // What people type, sealed with their own keys (privacy.* config).
  privacy::PersonalText& PersonalTexts();
  // The call guard of a service other than identity: tokens verified with
  // identity's keys, `per_second` calls per caller (bursts of 5 times
  // that), deleted accounts refused.
  auth::CallGuard& Callers(double per_second);
  // How this service writes; after OwnEvents.
  Front& front();

  // Started before the processor, in the order added.
  server::Parts& AddPart(server::Parts::Part part) { return parts_.Add(std::move(part)); }
  template <class T>
  void AddPart(std::string name, T& part) {
    parts_.Add(std::move(name), part);
  }
  // Started once every part is ready, in the order added.
  template <class T>
  void AddLoop(std::string name, T& loop) {
    loops_.Add(std::move(name), loop);
  }
  void AddLoop(server::Parts::Part part) { loops_.Add(std::move(part)); }
  // Runs when the process is told to stop, before the gRPC server drains
  // (e.g. ending watch streams so their clients move to another replica).
  void OnStopping(std::function<void()> first) { on_stopping_.push_back(std::move(first)); }

  // Starts everything, serves `services` (and the health check) while every
  // part is ready, until SIGTERM or SIGINT; then stops. The exit status: 0,
  // or 1 if something could not start.
  int Run(const std::vector<grpc::Service*>& services);

 private:
  EventFeed& Feed(const std::string& topic, const std::string& name, Projection& projection,
                  std::function<std::unique_ptr<google::protobuf::Message>()> new_event,
                  std::function<absl::Status(google::protobuf::Message&)> before_apply);
  void UseClosedAccounts();

  server::Parts parts_;
  server::Parts loops_;
  bool closed_accounts_used_ = false;
  std::vector<std::unique_ptr<EventFeed>> feeds_;
  EventFeed* own_events_ = nullptr;
  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<privacy::PersonalText> personal_;
  std::unique_ptr<auth::IdentityCallGuard> callers_;
  std::unique_ptr<Front> front_;
  std::vector<std::function<void()>> on_stopping_;
  // Every second once serving: the processor's, feeds' and reactor's lag,
  // measured from here so that a reader stuck on one record still shows.
  server::Loop lag_gauges_;
};

}  // namespace helpline::es
