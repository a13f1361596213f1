// helpline-matching (with identity and catalog) as processes against the
// test run's Kafka and a Redis of its own (killed and restarted on purpose),
// called over gRPC the way the person's and the expert's apps would.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "helpline/matching/v1/events.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "services/catalog/domain/catalog_test_log.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "tests/support/grpc_probe.h"
#include "tests/support/platform.h"
#include "tests/support/redis_server.h"
#include "tests/support/test_stack.h"

namespace helpline::matching {
namespace {

using ::helpline::testing::Account;
using ::helpline::testing::Platform;
using ::helpline::testing::UniqueName;
using Stub = v1::MatchingService::Stub;

// Service time runs at the real rate here; offers expire after 2 s.
constexpr char kOfferWindow[] = "2s";
// Watch streams one test holds open at once (from one account).
constexpr int kManyWatches = 2000;

// A WatchRequest stream on the client's callback API: the updates it got,
// and how it ended.
class RequestWatch : public grpc::ClientReadReactor<v1::WatchRequestResponse> {
 public:
  RequestWatch(Stub& stub, const Account& person, const std::string& help_request_id) {
    context_.AddMetadata("authorization", "Bearer " + person.access_token);
    context_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(3)));
    request_.set_help_request_id(help_request_id);
    stub.async()->WatchRequest(&context_, &request_, this);
    StartRead(&update_);
    StartCall();
  }
  // gRPC may not outlive the reactor: cancels and waits for the end.
  ~RequestWatch() override {
    context_.TryCancel();
    absl::MutexLock lock(&mutex_);
    mutex_.Await(absl::Condition(&done_));
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    {
      absl::MutexLock lock(&mutex_);
      ++updates_;
      last_ = update_.help_request().status();
    }
    StartRead(&update_);
  }
  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mutex_);
    done_ = true;
    status_ = status;
  }

  int updates() const {
    absl::MutexLock lock(&mutex_);
    return updates_;
  }
  v1::HelpRequestStatus last() const {
    absl::MutexLock lock(&mutex_);
    return last_;
  }
  // The stream's end status once it ended.
  std::optional<grpc::Status> ended() const {
    absl::MutexLock lock(&mutex_);
    if (!done_) return std::nullopt;
    return status_;
  }

 private:
  grpc::ClientContext context_;
  v1::WatchRequestRequest request_;
  v1::WatchRequestResponse update_;
  mutable absl::Mutex mutex_;
  int updates_ ABSL_GUARDED_BY(mutex_) = 0;
  v1::HelpRequestStatus last_ ABSL_GUARDED_BY(mutex_) = v1::HELP_REQUEST_STATUS_UNSPECIFIED;
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mutex_);
};

// Threads of a running process (from /proc).
int ThreadsOf(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "Threads:")) return std::atoi(line.substr(8).c_str());
  }
  return -1;
}

// Waits up to `timeout` for `done`.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

class MatchingKafkaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new ::helpline::testing::RedisServerProcess(::helpline::testing::PickFreePort());
    ASSERT_TRUE(redis_->Start());
    platform_ = new Platform();
    Platform::Options options;
    options.matching_config = {
        {"redis", {{"host", "127.0.0.1"}, {"port", redis_->port()}}},
        {"matching",
         {{"offer_window", kOfferWindow},
          {"request_wait_limit", "60s"},
          {"watch_streams_per_caller", kManyWatches}}}};
    ASSERT_TRUE(platform_->Start("match", options));
  }

  static void TearDownTestSuite() {
    EXPECT_TRUE(platform_->Stop()) << "clean shutdown on SIGTERM";
    delete platform_;
    delete redis_;
  }

  void SetUp() override {
    ASSERT_NE(platform_->matching().port(), 0);
    stub_ = v1::MatchingService::NewStub(
        ::helpline::testing::LocalChannel(platform_->matching().port()));
  }

  template <class Request, class Response, class Method>
  absl::Status Call(Method method, const Account& caller, const Request& request,
                    Response* response) {
    return Platform::Call(*stub_, method, caller, request, response);
  }

  std::string NewCategory() { return platform_->NewCategory(); }
  Account OnlineExpert(const std::string& category, int64_t rate = 150) {
    return platform_->OnlineExpert(category, rate);
  }

  static v1::RequestHelpRequest HelpRequest(const std::string& category) {
    return Platform::HelpRequestFor(category);
  }
  v1::HelpRequest AskForHelp(const Account& person, const v1::RequestHelpRequest& request) {
    return platform_->AskForHelp(person, request);
  }

  // The expert's next open offer, from WatchOffers.
  std::optional<v1::Offer> NextOffer(const Account& expert,
                                     absl::Duration timeout = absl::Seconds(20)) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + expert.access_token);
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    std::unique_ptr<grpc::ClientReader<v1::WatchOffersResponse>> reader =
        stub_->WatchOffers(&context, v1::WatchOffersRequest());
    v1::WatchOffersResponse update;
    std::optional<v1::Offer> offer;
    while (reader->Read(&update)) {
      if (update.has_offer()) {
        offer = update.offer();
        context.TryCancel();
        break;
      }
    }
    reader->Finish().ok();
    return offer;
  }

  v1::HelpRequest Get(const Account& person, const std::string& id) {
    v1::GetRequestRequest request;
    request.set_help_request_id(id);
    v1::GetRequestResponse response;
    absl::Status status = Call(&Stub::GetRequest, person, request, &response);
    EXPECT_TRUE(status.ok()) << status;
    return response.help_request();
  }

  // Polls until `done` holds for the request or 20 s passed.
  v1::HelpRequest GetUntil(const Account& person, const std::string& id,
                           const std::function<bool(const v1::HelpRequest&)>& done) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    v1::HelpRequest request;
    do {
      request = Get(person, id);
      if (done(request)) break;
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < deadline);
    return request;
  }

  absl::Status Answer(const Account& expert, const std::string& offer_id, bool accept,
                      v1::HelpRequest* matched = nullptr) {
    if (accept) {
      v1::AcceptOfferRequest request;
      request.set_offer_id(offer_id);
      v1::AcceptOfferResponse response;
      absl::Status status = Call(&Stub::AcceptOffer, expert, request, &response);
      if (matched != nullptr) *matched = response.help_request();
      return status;
    }
    v1::DeclineOfferRequest request;
    request.set_offer_id(offer_id);
    v1::DeclineOfferResponse response;
    return Call(&Stub::DeclineOffer, expert, request, &response);
  }

  std::vector<v1::MatchingEvent> Events() {
    std::vector<v1::MatchingEvent> events;
    for (const kafka::Record& record : ::helpline::testing::ReadToEnd(
             platform_->prefix() + "helpline.matching.events", platform_->partitions())) {
      v1::MatchingEvent event;
      EXPECT_TRUE(event.ParseFromString(record.value));
      events.push_back(std::move(event));
    }
    return events;
  }

  v1::BookSlotRequest Slot(const std::string& expert_id, absl::Time start, int minutes = 30) {
    v1::BookSlotRequest request;
    request.set_request_id(ids::NewUuidV7());
    request.set_expert_id(expert_id);
    *request.mutable_start() = ToProtoTime(start);
    request.set_minutes(minutes);
    request.set_note("Gears");
    return request;
  }

  static Platform* platform_;
  static ::helpline::testing::RedisServerProcess* redis_;
  std::unique_ptr<Stub> stub_;
};

Platform* MatchingKafkaTest::platform_ = nullptr;
::helpline::testing::RedisServerProcess* MatchingKafkaTest::redis_ = nullptr;

TEST_F(MatchingKafkaTest, AnAvailableExpertIsOfferedTheRequestAcceptsAndTheMatchCarriesTheTerms) {
  const std::string category = NewCategory();
  Account expert = OnlineExpert(category, 150);
  Account outsider = OnlineExpert(NewCategory());
  Account person = platform_->NewAccount();
  v1::HelpRequest asked = AskForHelp(person, HelpRequest(category));
  ASSERT_FALSE(asked.help_request_id().empty());
  EXPECT_EQ(asked.person_id(), person.user_id);

  std::optional<v1::Offer> offer = NextOffer(expert);
  ASSERT_TRUE(offer.has_value()) << "the only fitting expert gets the offer";
  EXPECT_EQ(offer->help_request_id(), asked.help_request_id());
  EXPECT_EQ(offer->description(), "My gears slip on the big cog");
  EXPECT_EQ(offer->price().per_minute().rate().amount_minor(), 150);
  EXPECT_EQ(Answer(outsider, offer->offer_id(), true).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Answer(person, offer->offer_id(), true).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Get(person, asked.help_request_id()).status(), v1::HELP_REQUEST_STATUS_OFFERED);

  v1::HelpRequest matched;
  ASSERT_TRUE(Answer(expert, offer->offer_id(), true, &matched).ok());
  EXPECT_EQ(matched.status(), v1::HELP_REQUEST_STATUS_MATCHED);
  EXPECT_EQ(matched.match().expert_id(), expert.user_id);
  EXPECT_EQ(matched.match().person_id(), person.user_id);
  EXPECT_EQ(matched.match().max_minutes(), 20);
  EXPECT_EQ(matched.match().max_amount().amount_minor(), 150 * 20);
  EXPECT_FALSE(matched.has_budget()) << "the expert does not see the person's budget";
  v1::HelpRequest again;
  ASSERT_TRUE(Answer(expert, offer->offer_id(), true, &again).ok()) << "a retry is answered alike";
  EXPECT_EQ(again.match().match_id(), matched.match().match_id());

  // The person's stream shows the match and ends.
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + person.access_token);
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::WatchRequestRequest watch;
  watch.set_help_request_id(asked.help_request_id());
  auto reader = stub_->WatchRequest(&context, watch);
  std::vector<v1::HelpRequestStatus> seen;
  v1::WatchRequestResponse update;
  while (reader->Read(&update)) seen.push_back(update.help_request().status());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_THAT(seen, ::testing::ElementsAre(v1::HELP_REQUEST_STATUS_MATCHED));

  // Nobody else reads the request.
  v1::GetRequestRequest get;
  get.set_help_request_id(asked.help_request_id());
  v1::GetRequestResponse got;
  EXPECT_EQ(Call(&Stub::GetRequest, outsider, get, &got).code(),
            absl::StatusCode::kPermissionDenied);

  int made = 0;
  for (const v1::MatchingEvent& event : Events()) {
    if (event.has_match_made() && event.match_made().match().match_id() == asked.help_request_id()) {
      ++made;
      EXPECT_EQ(event.match_made().match().category_id(), category);
      EXPECT_EQ(event.match_made().match().price().per_minute().rate().amount_minor(), 150);
    }
  }
  EXPECT_EQ(made, 1);
}

TEST_F(MatchingKafkaTest, TwoThousandOpenWatchesHoldNoThreadsAndEachSeesItsRequestEnd) {
  const std::string category = NewCategory();  // no expert: the requests wait
  Account person = platform_->NewAccount();
  v1::HelpRequest watched = AskForHelp(person, HelpRequest(category));
  ASSERT_EQ(watched.status(), v1::HELP_REQUEST_STATUS_WAITING);
  Account other = platform_->NewAccount();
  v1::HelpRequest unwatched = AskForHelp(other, HelpRequest(category));
  const int threads_before = ThreadsOf(platform_->matching().pid());

  // Streams spread over channels of their own, as over many clients.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<Stub>> stubs;
  for (int c = 0; c < 20; ++c) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("helpline.test.channel", c);  // not shared with the other channels
    channels.push_back(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", platform_->matching().port()),
        grpc::InsecureChannelCredentials(), arguments));
    stubs.push_back(v1::MatchingService::NewStub(channels.back()));
  }
  std::vector<std::unique_ptr<RequestWatch>> watches;
  for (int i = 0; i < kManyWatches; ++i) {
    watches.push_back(
        std::make_unique<RequestWatch>(*stubs[i % stubs.size()], person, watched.help_request_id()));
  }
  auto all = [&](const std::function<bool(const RequestWatch&)>& each) {
    return std::all_of(watches.begin(), watches.end(),
                       [&](const std::unique_ptr<RequestWatch>& w) { return each(*w); });
  };
  ASSERT_TRUE(Eventually([&] { return all([](const RequestWatch& w) { return w.updates() > 0; }); },
                         absl::Seconds(60)))
      << "every stream got the request as it is now";
  EXPECT_TRUE(all([](const RequestWatch& w) { return !w.ended().has_value(); }));
  const int threads_watching = ThreadsOf(platform_->matching().pid());
  EXPECT_LT(threads_watching, threads_before + 100)
      << "2000 open streams hold no thread each (" << threads_before << " threads before)";

  // Short calls are answered meanwhile, and a change to another request
  // sends nothing on these streams.
  for (int i = 0; i < 50; ++i) {
    v1::GetRequestRequest get;
    get.set_help_request_id(watched.help_request_id());
    v1::GetRequestResponse got;
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + person.access_token);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::Status answered = stub_->GetRequest(&context, get, &got);
    ASSERT_TRUE(answered.ok()) << answered.error_message();
  }
  v1::CancelRequestRequest cancel_other;
  cancel_other.set_help_request_id(unwatched.help_request_id());
  v1::CancelRequestResponse cancelled_other;
  ASSERT_TRUE(Call(&Stub::CancelRequest, other, cancel_other, &cancelled_other).ok());

  // The watched request ends: every stream sends it and ends.
  ASSERT_EQ(Get(person, watched.help_request_id()).status(), v1::HELP_REQUEST_STATUS_WAITING)
      << "still waiting (the suite's wait limit is 60 s)";
  v1::CancelRequestRequest cancel;
  cancel.set_help_request_id(watched.help_request_id());
  v1::CancelRequestResponse cancelled;
  ASSERT_TRUE(Call(&Stub::CancelRequest, person, cancel, &cancelled).ok());
  ASSERT_TRUE(Eventually([&] { return all([](const RequestWatch& w) { return w.ended().has_value(); }); },
                         absl::Seconds(60)))
      << "every stream ended with its request";
  EXPECT_TRUE(all([](const RequestWatch& w) {
    return w.ended()->ok() && w.last() == v1::HELP_REQUEST_STATUS_CANCELLED && w.updates() == 2;
  })) << "each stream: the waiting request, then the cancelled one, and nothing else";
}

TEST_F(MatchingKafkaTest, DeclinedAndExpiredOffersMoveOnAndThenTheRequestWaitsInLine) {
  const std::string category = NewCategory();
  Account anna = OnlineExpert(category);
  Account ben = OnlineExpert(category);
  Account person = platform_->NewAccount();
  v1::HelpRequest asked = AskForHelp(person, HelpRequest(category));

  v1::HelpRequest first = GetUntil(person, asked.help_request_id(), [](const v1::HelpRequest& r) {
    return r.status() == v1::HELP_REQUEST_STATUS_OFFERED;
  });
  ASSERT_EQ(first.status(), v1::HELP_REQUEST_STATUS_OFFERED);
  const Account& declining = first.offer().expert_id() == anna.user_id ? anna : ben;
  const Account& silent = first.offer().expert_id() == anna.user_id ? ben : anna;
  ASSERT_TRUE(Answer(declining, first.offer().offer_id(), false).ok());

  std::optional<v1::Offer> second = NextOffer(silent);
  ASSERT_TRUE(second.has_value()) << "a decline moves the request on";
  EXPECT_EQ(second->help_request_id(), asked.help_request_id());
  // Nobody answers: the offer expires and nobody is left.
  v1::HelpRequest waiting = GetUntil(person, asked.help_request_id(), [](const v1::HelpRequest& r) {
    return r.status() == v1::HELP_REQUEST_STATUS_WAITING;
  });
  EXPECT_EQ(waiting.status(), v1::HELP_REQUEST_STATUS_WAITING);
  EXPECT_EQ(waiting.offers_made(), 2);
  EXPECT_EQ(waiting.position(), 1);
  EXPECT_EQ(Answer(silent, second->offer_id(), true).code(), absl::StatusCode::kFailedPrecondition)
      << "an expired offer cannot be accepted";

  // A third expert comes online: the waiting request is offered at once.
  Account cara = OnlineExpert(category);
  std::optional<v1::Offer> third = NextOffer(cara);
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->help_request_id(), asked.help_request_id());

  v1::CancelRequestRequest cancel;
  cancel.set_help_request_id(asked.help_request_id());
  v1::CancelRequestResponse cancelled;
  EXPECT_EQ(Call(&Stub::CancelRequest, cara, cancel, &cancelled).code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Call(&Stub::CancelRequest, person, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.help_request().status(), v1::HELP_REQUEST_STATUS_CANCELLED);
  EXPECT_EQ(Answer(cara, third->offer_id(), true).code(), absl::StatusCode::kFailedPrecondition)
      << "cancelling withdraws the offer";
}

TEST_F(MatchingKafkaTest, ConcurrentRequestsNeverOfferAnExpertTwoAtOnceAndTheLineMovesUp) {
  const std::string category = NewCategory();
  std::vector<Account> experts = {OnlineExpert(category), OnlineExpert(category)};
  std::vector<Account> people;
  for (int i = 0; i < 5; ++i) people.push_back(platform_->NewAccount());
  std::vector<v1::HelpRequest> asked(people.size());
  std::vector<std::thread> askers;
  for (size_t i = 0; i < people.size(); ++i) {
    askers.emplace_back([&, i] { asked[i] = AskForHelp(people[i], HelpRequest(category)); });
  }
  for (std::thread& asker : askers) asker.join();

  // Nobody answers; offers expire and go round (2 s each) for a while.
  absl::SleepFor(absl::Seconds(9));
  std::set<int> positions;
  for (size_t i = 0; i < people.size(); ++i) {
    positions.insert(Get(people[i], asked[i].help_request_id()).position());
  }
  EXPECT_EQ(positions, (std::set<int>{1, 2, 3, 4, 5})) << "one line, everyone a place";

  // The first in line cancels; everyone behind moves up.
  size_t first = 0;
  for (size_t i = 0; i < people.size(); ++i) {
    if (Get(people[i], asked[i].help_request_id()).position() == 1) first = i;
  }
  v1::CancelRequestRequest cancel;
  cancel.set_help_request_id(asked[first].help_request_id());
  v1::CancelRequestResponse cancelled;
  ASSERT_TRUE(Call(&Stub::CancelRequest, people[first], cancel, &cancelled).ok());
  positions.clear();
  for (size_t i = 0; i < people.size(); ++i) {
    if (i != first) positions.insert(Get(people[i], asked[i].help_request_id()).position());
  }
  EXPECT_EQ(positions, (std::set<int>{1, 2, 3, 4}));
  for (size_t i = 0; i < people.size(); ++i) {
    if (i == first) continue;
    cancel.set_help_request_id(asked[i].help_request_id());
    ASSERT_TRUE(Call(&Stub::CancelRequest, people[i], cancel, &cancelled).ok());
  }

  // From the events: each expert's offers, and when each ended.
  std::set<std::string> ours;
  for (const v1::HelpRequest& request : asked) ours.insert(request.help_request_id());
  struct Interval {
    absl::Time start;
    absl::Time end = absl::InfiniteFuture();
  };
  std::map<std::string, std::map<std::string, Interval>> offers;  // expert -> offer -> interval
  std::map<std::string, std::string> expert_of;
  std::vector<v1::MatchingEvent> events = Events();
  for (const v1::MatchingEvent& event : events) {
    if (event.has_expert_offered()) {
      expert_of[event.expert_offered().offer_id()] = event.expert_offered().expert_id();
      offers[event.expert_offered().expert_id()][event.expert_offered().offer_id()].start =
          FromProtoTime(event.meta().occurred_at());
    }
  }
  for (const v1::MatchingEvent& event : events) {
    std::string offer_id;
    if (event.has_offer_expired()) offer_id = event.offer_expired().offer_id();
    if (event.has_offer_declined()) offer_id = event.offer_declined().offer_id();
    if (event.has_help_request_cancelled()) offer_id = event.help_request_cancelled().offer_id();
    if (event.has_help_request_expired()) offer_id = event.help_request_expired().offer_id();
    if (event.has_match_made()) offer_id = event.match_made().offer_id();
    if (offer_id.empty() || !expert_of.contains(offer_id)) continue;
    offers[expert_of[offer_id]][offer_id].end = FromProtoTime(event.meta().occurred_at());
  }
  for (const Account& expert : experts) {
    std::vector<Interval> intervals;
    for (const auto& [id, interval] : offers[expert.user_id]) intervals.push_back(interval);
    EXPECT_GE(intervals.size(), 3u) << "offers go round the line";
    std::sort(intervals.begin(), intervals.end(),
              [](const Interval& a, const Interval& b) { return a.start < b.start; });
    for (size_t i = 1; i < intervals.size(); ++i) {
      EXPECT_LE(intervals[i - 1].end, intervals[i].start)
          << "expert " << expert.user_id << " had two offers open at once";
    }
  }
}

TEST_F(MatchingKafkaTest, APersonHasAtMostThreeOpenRequestsAndARetryIsNoNewOne) {
  const std::string category = NewCategory();
  Account person = platform_->NewAccount();
  std::vector<v1::RequestHelpRequest> asks;
  std::vector<v1::HelpRequest> open;
  for (int i = 0; i < 3; ++i) {
    asks.push_back(HelpRequest(category));
    open.push_back(AskForHelp(person, asks.back()));
  }
  v1::RequestHelpResponse response;
  EXPECT_EQ(Call(&Stub::RequestHelp, person, HelpRequest(category), &response).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Call(&Stub::RequestHelp, person, asks[1], &response).ok())
      << "a retry with the same request_id answers as the first time";
  EXPECT_EQ(response.help_request().help_request_id(), open[1].help_request_id());

  v1::CancelRequestRequest cancel;
  cancel.set_help_request_id(open[0].help_request_id());
  v1::CancelRequestResponse cancelled;
  ASSERT_TRUE(Call(&Stub::CancelRequest, person, cancel, &cancelled).ok());
  EXPECT_TRUE(Call(&Stub::RequestHelp, person, HelpRequest(category), &response).ok());
}

TEST_F(MatchingKafkaTest, TwentyConcurrentBookingsOfOneSlotMakeExactlyOne) {
  Account expert = platform_->PublishedExpert(catalog::testing::ValidContent("Bookable"));
  std::vector<Account> people;
  for (int i = 0; i < 5; ++i) people.push_back(platform_->NewAccount());
  const absl::Time monday = Platform::NextMondayAtTen();

  // Matching sees the new expert a moment after catalog publishes it.
  v1::BookSlotResponse probe;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::Status found;
  do {
    found = Call(&Stub::BookSlot, people[0], Slot(expert.user_id, monday + absl::Hours(24)), &probe);
    if (found.code() != absl::StatusCode::kNotFound) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  EXPECT_EQ(found.code(), absl::StatusCode::kFailedPrecondition)
      << "Tuesday is outside the expert's hours: " << found;

  std::atomic<int> booked{0};
  std::atomic<int> refused{0};
  std::string winner_id;
  std::string booking_id;
  absl::Mutex mutex;
  std::vector<std::thread> bookers;
  for (int i = 0; i < 20; ++i) {
    bookers.emplace_back([&, i] {
      const Account& person = people[i % people.size()];
      v1::BookSlotResponse response;
      absl::Status status = Call(&Stub::BookSlot, person, Slot(expert.user_id, monday), &response);
      if (status.ok()) {
        ++booked;
        absl::MutexLock lock(&mutex);
        winner_id = person.user_id;
        booking_id = response.booking().booking_id();
      } else if (status.code() == absl::StatusCode::kFailedPrecondition) {
        ++refused;
      } else {
        ADD_FAILURE() << status;
      }
    });
  }
  for (std::thread& booker : bookers) booker.join();
  EXPECT_EQ(booked.load(), 1);
  EXPECT_EQ(refused.load(), 19);

  const Account& winner =
      *std::find_if(people.begin(), people.end(),
                    [&](const Account& account) { return account.user_id == winner_id; });
  for (const Account* who : std::vector<const Account*>{&winner, &expert}) {
    v1::ListMyBookingsResponse mine;
    ASSERT_TRUE(Call(&Stub::ListMyBookings, *who, v1::ListMyBookingsRequest(), &mine).ok());
    ASSERT_EQ(mine.bookings_size(), 1);
    EXPECT_EQ(mine.bookings(0).booking_id(), booking_id);
    EXPECT_EQ(FromProtoTime(mine.bookings(0).start()), monday);
    EXPECT_EQ(mine.bookings(0).max_amount().amount_minor(), 150 * 30);
  }
  v1::GetBookingRequest get;
  get.set_booking_id(booking_id);
  v1::GetBookingResponse got;
  const Account& loser = winner_id == people[0].user_id ? people[1] : people[0];
  EXPECT_EQ(Call(&Stub::GetBooking, loser, get, &got).code(), absl::StatusCode::kPermissionDenied);

  // Days ahead: a free cancellation; the slot is free again.
  v1::CancelBookingRequest cancel;
  cancel.set_booking_id(booking_id);
  v1::CancelBookingResponse cancelled;
  EXPECT_EQ(Call(&Stub::CancelBooking, loser, cancel, &cancelled).code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Call(&Stub::CancelBooking, winner, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.booking().status(), v1::BOOKING_STATUS_CANCELLED);
  EXPECT_FALSE(cancelled.booking().late_cancellation());
  v1::BookSlotResponse again;
  EXPECT_TRUE(Call(&Stub::BookSlot, loser, Slot(expert.user_id, monday), &again).ok());

  int confirmed = 0;
  for (const v1::MatchingEvent& event : Events()) {
    if (event.has_booking_confirmed() &&
        event.booking_confirmed().booking().expert_id() == expert.user_id) {
      ++confirmed;
    }
  }
  EXPECT_EQ(confirmed, 2);
}

TEST_F(MatchingKafkaTest, BadInputNamesTheFieldAndWritesNothing) {
  Account person = platform_->NewAccount();
  // Other tests' timers may still write events: count this person's only.
  auto events_of_person = [&] {
    int count = 0;
    for (const v1::MatchingEvent& event : Events()) {
      if (absl::StrContains(event.SerializeAsString(), person.user_id)) ++count;
    }
    return count;
  };
  const int before = events_of_person();
  auto field_of = [](const absl::Status& status) {
    std::vector<errors::FieldViolation> violations = errors::FieldViolations(status);
    return violations.empty() ? std::string("<none>") : violations[0].field;
  };
  std::vector<std::pair<std::function<void(v1::RequestHelpRequest&)>, std::string>> cases = {
      {[](auto& r) { r.clear_request_id(); }, "request_id"},
      {[](auto& r) { r.set_category_id("no-such-category"); }, "category_id"},
      {[](auto& r) { r.set_language("klingon"); }, "language"},
      {[](auto& r) { r.clear_description(); }, "description"},
      {[](auto& r) { r.set_max_minutes(1000); }, "max_minutes"},
      {[](auto& r) { r.clear_budget(); }, "budget"},
      {[](auto& r) { r.mutable_budget()->mutable_max_per_minute()->set_currency_code("USD"); },
       "budget.max_per_minute.currency_code"},
      {[](auto& r) { r.mutable_budget()->mutable_max_per_minute()->set_amount_minor(0); },
       "budget.max_per_minute.amount_minor"},
      {[](auto& r) { r.set_sponsor_program_id("sponsor-program:none"); }, "sponsor_program_id"},
  };
  for (const auto& [spoil, field] : cases) {
    v1::RequestHelpRequest request = HelpRequest("bike-repair");
    spoil(request);
    v1::RequestHelpResponse response;
    absl::Status status = Call(&Stub::RequestHelp, person, request, &response);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_EQ(field_of(status), field);
  }
  v1::RequestHelpResponse response;
  EXPECT_EQ(Call(&Stub::RequestHelp, Account{}, HelpRequest("bike-repair"), &response).code(),
            absl::StatusCode::kUnauthenticated);
  v1::BookSlotRequest slot = Slot("someone", Platform::NextMondayAtTen());
  slot.clear_start();
  v1::BookSlotResponse booked;
  absl::Status status = Call(&Stub::BookSlot, person, slot, &booked);
  EXPECT_EQ(field_of(status), "start");
  v1::ListMyBookingsRequest list;
  list.set_page_size(1000);
  v1::ListMyBookingsResponse listed;
  EXPECT_EQ(field_of(Call(&Stub::ListMyBookings, person, list, &listed)), "page_size");
  v1::AcceptOfferResponse accepted;
  EXPECT_EQ(field_of(Call(&Stub::AcceptOffer, person, v1::AcceptOfferRequest(), &accepted)),
            "offer_id");
  EXPECT_EQ(events_of_person(), before) << "rejections write no event";
}

// Last: it kills this suite's Redis.
TEST_F(MatchingKafkaTest, WithRedisDownHelpNowIsUnavailableBookingsWorkAndAllRecovers) {
  const std::string category = NewCategory();
  Account expert = OnlineExpert(category);
  Account bookable = platform_->PublishedExpert(catalog::testing::ValidContent("Bookable"));
  Account person = platform_->NewAccount();
  redis_->Kill();

  v1::RequestHelpResponse response;
  absl::Status status = Call(&Stub::RequestHelp, person, HelpRequest(category), &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("presence"));
  EXPECT_EQ(platform_->Heartbeat(expert, v1::PRESENCE_STATUS_AVAILABLE).code(),
            absl::StatusCode::kUnavailable);
  v1::BookSlotResponse booked;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    status = Call(&Stub::BookSlot, person, Slot(bookable.user_id, Platform::NextMondayAtTen()), &booked);
    if (status.code() != absl::StatusCode::kNotFound) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  EXPECT_TRUE(status.ok()) << "bookings do not need Redis: " << status;

  ASSERT_TRUE(redis_->Start());
  // Presence comes back with the next heartbeat; help now works again.
  EXPECT_TRUE(platform_->Heartbeat(expert, v1::PRESENCE_STATUS_AVAILABLE).ok());
  v1::HelpRequest asked = AskForHelp(person, HelpRequest(category));
  std::optional<v1::Offer> offer = NextOffer(expert);
  ASSERT_TRUE(offer.has_value());
  v1::HelpRequest matched;
  ASSERT_TRUE(Answer(expert, offer->offer_id(), true, &matched).ok());
  EXPECT_EQ(matched.status(), v1::HELP_REQUEST_STATUS_MATCHED);
  EXPECT_EQ(matched.help_request_id(), asked.help_request_id());
}

}  // namespace
}  // namespace helpline::matching
