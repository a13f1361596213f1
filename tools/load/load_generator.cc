#include "tools/load/load_generator.h"

#include <algorithm>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/server/health_client.h"

namespace helpline::load {
namespace {

using client::Client;
using client::User;
using CatalogStub = catalog::v1::CatalogService::Stub;
using IdentityStub = identity::v1::IdentityService::Stub;
using MatchingStub = matching::v1::MatchingService::Stub;
using SessionsStub = sessions::v1::SessionsService::Stub;

constexpr char kCurrency[] = "EUR";
constexpr int64_t kRatePerMinute = 100;

// Answers that a restart, a broker away or a read model behind explain:
// the same call is tried again.
bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kAborted ||
         code == absl::StatusCode::kUnknown || code == absl::StatusCode::kInternal ||
         code == absl::StatusCode::kCancelled;  // a server shutting down cancels its calls
}

std::string CodeName(absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);
  for (char& c : name) c = c == ' ' ? '_' : static_cast<char>(std::toupper(c));
  return name;
}

double Percentile(std::vector<double>& values, double fraction) {
  if (values.empty()) return 0;
  size_t at = std::min(values.size() - 1, static_cast<size_t>(fraction * values.size()));
  std::nth_element(values.begin(), values.begin() + at, values.end());
  return values[at];
}

// Commands written and not yet handled, over the processor's partitions.
int64_t CommandsLag(const std::string& metrics) {
  int64_t lag = 0;
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (!absl::StartsWith(line, "helpline_processor_commands_lag{")) continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) {
      lag += static_cast<int64_t>(value);
    }
  }
  return lag;
}

runtime::v1::Money Euros(int64_t minor) {
  runtime::v1::Money money;
  money.set_currency_code(kCurrency);
  money.set_amount_minor(minor);
  return money;
}

}  // namespace

struct LoadGenerator::Expert {
  absl::Mutex mutex;  // the tokens
  User user ABSL_GUARDED_BY(mutex);
  std::string user_id;
  std::atomic<bool> in_call{false};
};

struct LoadGenerator::Recorder {
  absl::Mutex mutex;
  std::map<std::string, std::vector<double>> latencies_ms ABSL_GUARDED_BY(mutex);
  std::map<std::string, std::map<std::string, int64_t>> errors ABSL_GUARDED_BY(mutex);
  std::vector<Acknowledged> acknowledged ABSL_GUARDED_BY(mutex);
  std::vector<std::string> help_requests ABSL_GUARDED_BY(mutex);
  std::vector<std::string> people ABSL_GUARDED_BY(mutex);
  std::map<std::string, int64_t> failed ABSL_GUARDED_BY(mutex);
  std::atomic<int64_t> started{0}, completed{0}, cancelled{0}, expired{0}, offers_to_busy{0},
      offers_unanswered{0};

  void Rpc(const std::string& method, absl::StatusCode code, absl::Duration latency) {
    absl::MutexLock lock(&mutex);
    latencies_ms[method].push_back(absl::ToDoubleMilliseconds(latency));
    if (code != absl::StatusCode::kOk) ++errors[method][CodeName(code)];
  }
  void Ack(const std::string& service, const std::string& aggregate_id, const std::string& type) {
    absl::MutexLock lock(&mutex);
    acknowledged.push_back({service, aggregate_id, type});
  }
  void Failed(const std::string& why) {
    absl::MutexLock lock(&mutex);
    ++failed[why];
  }
};

// One simulated person: an account (a new one every few journeys) and the
// journeys it runs one after another.
class LoadGenerator::Person {
 public:
  Person(LoadGenerator& load, int index)
      : load_(load), index_(index), random_(std::random_device{}()) {}

  void Run(absl::Time until, const std::atomic<bool>& stop,
           const std::function<bool()>& may_start) {
    int journeys = 0;
    while (!stop.load() && absl::Now() < until) {
      if (!may_start()) continue;
      if (journeys % load_.options_.journeys_per_person == 0 && !NewAccount()) {
        absl::SleepFor(absl::Milliseconds(500));
        continue;
      }
      ++journeys;
      Journey();
    }
  }

 private:
  // Calls `method` as `user` (its token from `token`), again while the
  // answer is one a restart explains, for up to retry_for.
  template <class Stub, class Request, class Response, class Method>
  absl::Status Rpc(const std::string& name, Stub& stub, Method method,
                    const std::function<absl::StatusOr<std::string>()>& token,
                    const Request& request, Response* response) {
    const absl::Time deadline = absl::Now() + load_.options_.retry_for;
    absl::Duration backoff = absl::Milliseconds(50);
    while (true) {
      absl::StatusOr<std::string> bearer = token();
      absl::Status status = bearer.status();
      if (bearer.ok()) {
        const absl::Time start = absl::Now();
        status = Client::Call(stub, method, *bearer, request, response, absl::Seconds(10));
        load_.recorder_->Rpc(name, status.code(), absl::Now() - start);
      }
      if (status.ok() || !Retryable(status.code()) || absl::Now() > deadline) return status;
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
  }

  std::function<absl::StatusOr<std::string>()> Mine() {
    return [this] { return load_.client_->Token(user_); };
  }
  std::function<absl::StatusOr<std::string>()> Of(Expert& expert) {
    return [this, &expert]() -> absl::StatusOr<std::string> {
      absl::MutexLock lock(&expert.mutex);
      return load_.client_->Token(expert.user);
    };
  }
  std::function<absl::StatusOr<std::string>()> Nobody() {
    return []() -> absl::StatusOr<std::string> { return std::string(); };
  }

  bool Chance(double share) { return std::uniform_real_distribution<>(0, 1)(random_) < share; }

  // Counts the journey as failed at `step`.
  void CountFailure(const std::string& step, const absl::Status& status) {
    load_.recorder_->Failed(absl::StrCat(step, ": ", CodeName(status.code()), ": ",
                                         status.message().substr(0, 120)));
  }
  // The same, returning `status`.
  absl::Status Fail(const std::string& step, const absl::Status& status) {
    CountFailure(step, status);
    return status;
  }

  bool NewAccount() {
    identity::v1::RegisterRequest request;
    request.set_request_id(ids::NewUuidV7());
    request.set_email(absl::StrCat(load_.options_.run_tag, "-person-", index_, "-",
                                   ids::NewUuidV7().substr(24), "@load.helpline.local"));
    request.set_password(kLoadPassword);
    request.set_display_name(absl::StrCat("Person ", index_));
    request.set_account_type(identity::v1::ACCOUNT_TYPE_PERSON);
    identity::v1::RegisterResponse registered;
    absl::Status status = Rpc("Register", load_.client_->identity(), &IdentityStub::Register,
                               Nobody(), request, &registered);
    if (!status.ok()) return Fail("Register", status).ok();
    load_.recorder_->Ack("identity", registered.user_id(), "UserRegistered");
    {
      absl::MutexLock lock(&load_.recorder_->mutex);
      load_.recorder_->people.push_back(request.email());
    }
    absl::StatusOr<User> user = load_.client_->SignIn(request.email(), kLoadPassword);
    const absl::Time deadline = absl::Now() + load_.options_.retry_for;
    while (!user.ok() && Retryable(user.status().code()) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(200));
      user = load_.client_->SignIn(request.email(), kLoadPassword);
    }
    if (!user.ok()) return Fail("Login", user.status()).ok();
    user_ = *std::move(user);
    return true;
  }

  void Journey() {
    Recorder& recorder = *load_.recorder_;
    ++recorder.started;
    const std::string& category = load_.categories_[random_() % load_.categories_.size()];

    catalog::v1::SearchExpertsRequest search;
    search.set_category_id(category);
    catalog::v1::SearchExpertsResponse found;
    if (absl::Status s = Rpc("SearchExperts", load_.client_->catalog(),
                              &CatalogStub::SearchExperts, Mine(), search, &found);
        !s.ok()) {
      CountFailure("SearchExperts", s);
      return;
    }

    matching::v1::RequestHelpRequest ask;
    ask.set_request_id(ids::NewUuidV7());
    ask.set_category_id(category);
    ask.set_language("en");
    ask.set_description("My chain keeps slipping off the big cog.");
    *ask.mutable_budget()->mutable_max_per_minute() = Euros(2 * kRatePerMinute);
    ask.set_max_minutes(30);
    matching::v1::RequestHelpResponse asked;
    if (absl::Status s = Rpc("RequestHelp", load_.client_->matching(),
                              &MatchingStub::RequestHelp, Mine(), ask, &asked);
        !s.ok()) {
      CountFailure("RequestHelp", s);
      return;
    }
    const std::string request_id = asked.help_request().help_request_id();
    const std::string aggregate = absl::StrCat("help-request:", request_id);
    recorder.Ack("matching", aggregate, "HelpRequested");
    {
      absl::MutexLock lock(&recorder.mutex);
      recorder.help_requests.push_back(request_id);
    }

    if (Chance(load_.options_.cancel_share)) {
      matching::v1::CancelRequestRequest cancel;
      cancel.set_help_request_id(request_id);
      matching::v1::CancelRequestResponse cancelled;
      absl::Status s = Rpc("CancelRequest", load_.client_->matching(),
                            &MatchingStub::CancelRequest, Mine(), cancel, &cancelled);
      if (s.ok()) {
        recorder.Ack("matching", aggregate, "HelpRequestCancelled");
        ++recorder.cancelled;
        return;
      }
      if (s.code() != absl::StatusCode::kFailedPrecondition) {
        CountFailure("CancelRequest", s);
        return;
      }
      // Matched in the meantime: the journey goes on.
    }

    Expert* expert = nullptr;
    absl::Status matched = Match(request_id, aggregate, &expert);
    if (!matched.ok()) {
      if (matched.code() != absl::StatusCode::kNotFound) CountFailure("match", matched);
      return;
    }
    absl::Status call = HoldCall(request_id, *expert);
    if (!call.ok()) {
      // The session ends by its timers (no-show, not back); the expert
      // stays in it until then.
      return;
    }
    expert->in_call = false;
    load_.Beat(*expert);  // and available again as it ends

    if (Chance(load_.options_.review_share)) {
      sessions::v1::SubmitReviewRequest review;
      review.set_session_id(request_id);
      review.set_stars(4 + static_cast<int>(random_() % 2));
      review.set_text("Fixed in no time.");
      sessions::v1::SubmitReviewResponse reviewed;
      if (absl::Status s = Rpc("SubmitReview", load_.client_->sessions(),
                                &SessionsStub::SubmitReview, Mine(), review, &reviewed);
          !s.ok()) {
        CountFailure("SubmitReview", s);
        return;
      }
      recorder.Ack("sessions", request_id, "ReviewSubmitted");
    }
    if (Chance(load_.options_.refund_share)) {
      sessions::v1::RequestRefundRequest refund;
      refund.set_session_id(request_id);
      refund.set_reason("It is still slipping.");
      sessions::v1::RequestRefundResponse refunded;
      if (absl::Status s = Rpc("RequestRefund", load_.client_->sessions(),
                                &SessionsStub::RequestRefund, Mine(), refund, &refunded);
          !s.ok()) {
        CountFailure("RequestRefund", s);
        return;
      }
      recorder.Ack("sessions", request_id, "RefundRequested");
    }
    ++recorder.completed;
  }

  // Follows the request until an expert who is free accepted its offer
  // (that expert, marked in a call, in `expert`). NOT_FOUND when it
  // expired or was cancelled (counted).
  absl::Status Match(const std::string& request_id, const std::string& aggregate,
                     Expert** expert) {
    Recorder& recorder = *load_.recorder_;
    const absl::Time deadline = absl::Now() + load_.options_.retry_for + absl::Minutes(10);
    matching::v1::GetRequestRequest get;
    get.set_help_request_id(request_id);
    std::string declined_offer;
    while (absl::Now() < deadline) {
      matching::v1::GetRequestResponse got;
      if (absl::Status s = Rpc("GetRequest", load_.client_->matching(),
                                &MatchingStub::GetRequest, Mine(), get, &got);
          !s.ok()) {
        return s;
      }
      const matching::v1::HelpRequest& request = got.help_request();
      switch (request.status()) {
        case matching::v1::HELP_REQUEST_STATUS_OFFERED: {
          if (request.offer().offer_id() == declined_offer) break;
          if (Chance(load_.options_.unanswered_offer_share)) {
            // The expert is away from the screen: the offer runs out and
            // the request is offered again.
            ++recorder.offers_unanswered;
            declined_offer = request.offer().offer_id();
            break;
          }
          Expert* offered = load_.TakeExpert(request.offer().expert_id());
          if (offered == nullptr) {
            ++recorder.offers_to_busy;
            declined_offer = request.offer().offer_id();
            matching::v1::DeclineOfferRequest decline;
            decline.set_offer_id(declined_offer);
            matching::v1::DeclineOfferResponse declined;
            Expert* owner = load_.FindExpert(request.offer().expert_id());
            if (owner != nullptr) {
              Rpc("DeclineOffer", load_.client_->matching(), &MatchingStub::DeclineOffer,
                   Of(*owner), decline, &declined)
                  .IgnoreError();
            }
            break;
          }
          matching::v1::AcceptOfferRequest accept;
          accept.set_offer_id(request.offer().offer_id());
          matching::v1::AcceptOfferResponse accepted;
          absl::Status s = Rpc("AcceptOffer", load_.client_->matching(),
                                &MatchingStub::AcceptOffer, Of(*offered), accept, &accepted);
          if (s.ok()) {
            recorder.Ack("matching", aggregate, "MatchMade");
            load_.Beat(*offered);  // the app says busy as the call starts
            *expert = offered;
            return absl::OkStatus();
          }
          offered->in_call = false;
          if (s.code() != absl::StatusCode::kFailedPrecondition) return s;
          break;  // the offer expired meanwhile: a new one comes
        }
        case matching::v1::HELP_REQUEST_STATUS_MATCHED: {
          // Accepted by a call whose answer was lost.
          Expert* owner = load_.FindExpert(request.match().expert_id());
          if (owner == nullptr) return absl::InternalError("matched with an unknown expert");
          owner->in_call = true;
          *expert = owner;
          return absl::OkStatus();
        }
        case matching::v1::HELP_REQUEST_STATUS_WAITING:
          break;
        default:
          ++recorder.expired;
          return absl::NotFoundError("the request ended unmatched");
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::DeadlineExceededError("no match");
  }

  // Both join, the call lasts call_length, the person ends it.
  absl::Status HoldCall(const std::string& session_id, Expert& expert) {
    sessions::v1::GetSessionRequest get;
    get.set_session_id(session_id);
    sessions::v1::GetSessionResponse got;
    absl::Status created;
    const absl::Time deadline = absl::Now() + load_.options_.retry_for;
    // Sessions creates the session when it reads the match.
    while (!(created = Rpc("GetSession", load_.client_->sessions(), &SessionsStub::GetSession,
                            Mine(), get, &got))
                .ok() &&
           created.code() == absl::StatusCode::kNotFound && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (!created.ok()) return Fail("GetSession", created);
    sessions::v1::JoinSessionRequest join;
    join.set_session_id(session_id);
    sessions::v1::JoinSessionResponse joined;
    for (auto token : {Mine(), Of(expert)}) {
      absl::Status s = Rpc("JoinSession", load_.client_->sessions(), &SessionsStub::JoinSession,
                            token, join, &joined);
      if (!s.ok()) return Fail("JoinSession", s);
      load_.recorder_->Ack("sessions", session_id, "ParticipantJoined");
    }
    absl::SleepFor(load_.options_.call_length);
    sessions::v1::EndSessionRequest end;
    end.set_session_id(session_id);
    sessions::v1::EndSessionResponse ended;
    absl::Status s = Rpc("EndSession", load_.client_->sessions(), &SessionsStub::EndSession,
                          Mine(), end, &ended);
    if (!s.ok()) return Fail("EndSession", s);
    load_.recorder_->Ack("sessions", session_id, "SessionEnded");
    return absl::OkStatus();
  }

  LoadGenerator& load_;
  const int index_;
  std::mt19937_64 random_;
  User user_;
};

LoadGenerator::LoadGenerator(LoadOptions options)
    : options_(std::move(options)),
      client_(std::make_unique<Client>(options_.targets)),
      recorder_(std::make_unique<Recorder>()) {}

LoadGenerator::~LoadGenerator() {
  stopping_ = true;
  for (std::thread& thread : background_) thread.join();
}

int64_t LoadGenerator::Completed() const { return recorder_->completed.load(); }

LoadGenerator::Expert* LoadGenerator::FindExpert(const std::string& user_id) {
  for (const std::unique_ptr<Expert>& expert : experts_) {
    if (expert->user_id == user_id) return expert.get();
  }
  return nullptr;
}

LoadGenerator::Expert* LoadGenerator::TakeExpert(const std::string& user_id) {
  Expert* expert = FindExpert(user_id);
  bool free = false;
  if (expert == nullptr || !expert->in_call.compare_exchange_strong(free, true)) return nullptr;
  return expert;
}

absl::Status LoadGenerator::Setup() {
  absl::StatusOr<User> admin = client_->SignIn(options_.admin_email, options_.admin_password);
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);
       !admin.ok() && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(300));
    admin = client_->SignIn(options_.admin_email, options_.admin_password);
  }
  if (!admin.ok()) return admin.status();
  absl::StatusOr<std::string> admin_token = admin->access_token;
  {
    absl::MutexLock lock(&admin_mutex_);
    admin_ = *std::move(admin);
  }
  for (int i = 0; i < options_.categories; ++i) {
    catalog::v1::CreateCategoryRequest request;
    request.set_category_id(absl::StrCat(options_.run_tag, "-topic-", i));
    request.set_request_id(request.category_id());
    request.set_name(absl::StrCat("Topic ", i, " of ", options_.run_tag));
    catalog::v1::CreateCategoryResponse response;
    absl::Status s = Client::Call(client_->catalog(), &CatalogStub::CreateCategory,
                                  *admin_token, request, &response);
    if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) return s;
    categories_.push_back(request.category_id());
  }
  experts_.resize(options_.experts);
  std::vector<absl::Status> results(options_.experts);
  std::vector<std::thread> threads;
  for (int i = 0; i < options_.experts; ++i) {
    threads.emplace_back([this, i, &results] { results[i] = SetUpExpert(i); });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& result : results) {
    if (!result.ok()) return result;
  }
  background_.emplace_back([this] { Heartbeats(); });
  background_.emplace_back([this] { ScrapeLag(); });
  return absl::OkStatus();
}

absl::Status LoadGenerator::SetUpExpert(int index) {
  const std::string email = absl::StrCat(options_.run_tag, "-expert-", index, "-",
                                         ids::NewUuidV7().substr(24), "@load.helpline.local");
  identity::v1::RegisterRequest registration;
  registration.set_request_id(email);
  registration.set_email(email);
  registration.set_password(kLoadPassword);
  registration.set_display_name(absl::StrCat("Expert ", index));
  registration.set_account_type(identity::v1::ACCOUNT_TYPE_PERSON);
  identity::v1::RegisterResponse registered;
  if (absl::Status s = Client::Call(client_->identity(), &IdentityStub::Register, "",
                                    registration, &registered);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<User> user = client_->SignIn(email, kLoadPassword);
  if (!user.ok()) return user.status();

  catalog::v1::CreateProfileRequest create;
  create.set_request_id(absl::StrCat("profile-", email));
  catalog::v1::ProfileContent& content = *create.mutable_content();
  const std::string& category = categories_[index % categories_.size()];
  content.set_public_name(absl::StrCat("Expert ", index));
  content.set_headline(absl::StrCat("Help with ", category));
  content.set_bio("Simulated by helpline-load.");
  content.add_category_ids(category);
  content.add_languages("en");
  catalog::v1::PerMinutePrice& price = *content.mutable_price()->mutable_per_minute();
  *price.mutable_rate() = Euros(kRatePerMinute);
  price.set_minimum_minutes(5);
  content.mutable_availability()->set_time_zone("Europe/Berlin");
  catalog::v1::CreateProfileResponse created;
  catalog::v1::SubmitProfileRequest submit;
  submit.set_request_id(absl::StrCat("submit-", email));
  catalog::v1::SubmitProfileResponse submitted;
  catalog::v1::ApproveProfileRequest approve;
  approve.set_request_id(absl::StrCat("approve-", email));
  approve.set_expert_id(user->user_id);
  catalog::v1::ApproveProfileResponse approved;
  catalog::v1::PublishProfileRequest publish;
  publish.set_request_id(absl::StrCat("publish-", email));
  catalog::v1::PublishProfileResponse published;
  absl::StatusOr<std::string> admin_token;
  {
    absl::MutexLock lock(&admin_mutex_);
    admin_token = client_->Token(admin_);
  }
  if (!admin_token.ok()) return admin_token.status();
  for (absl::Status step : {Client::Call(client_->catalog(), &CatalogStub::CreateProfile,
                                         user->access_token, create, &created),
                            Client::Call(client_->catalog(), &CatalogStub::SubmitProfile,
                                         user->access_token, submit, &submitted),
                            Client::Call(client_->catalog(), &CatalogStub::ApproveProfile,
                                         *admin_token, approve, &approved),
                            Client::Call(client_->catalog(), &CatalogStub::PublishProfile,
                                         user->access_token, publish, &published)}) {
    if (!step.ok()) return step;
  }
  absl::StatusOr<User> expert = client_->WaitForRole(*std::move(user), "expert");
  if (!expert.ok()) return expert.status();
  experts_[index] = std::make_unique<Expert>();
  experts_[index]->user_id = expert->user_id;
  absl::MutexLock lock(&experts_[index]->mutex);
  experts_[index]->user = *std::move(expert);
  return absl::OkStatus();
}

void LoadGenerator::Beat(Expert& expert) {
  absl::StatusOr<std::string> token;
  {
    absl::MutexLock lock(&expert.mutex);
    token = client_->Token(expert.user);
  }
  if (!token.ok()) return;
  matching::v1::HeartbeatRequest beat;
  beat.set_status(expert.in_call ? matching::v1::PRESENCE_STATUS_BUSY
                                 : matching::v1::PRESENCE_STATUS_AVAILABLE);
  matching::v1::HeartbeatResponse answer;
  const absl::Time start = absl::Now();
  absl::Status s = Client::Call(client_->matching(), &MatchingStub::Heartbeat, *token, beat,
                                &answer, absl::Seconds(5));
  recorder_->Rpc("Heartbeat", s.code(), absl::Now() - start);
}

void LoadGenerator::Heartbeats() {
  while (!stopping_.load()) {
    for (const std::unique_ptr<Expert>& expert : experts_) Beat(*expert);
    for (int i = 0; i < 10 && !stopping_.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
  }
}

void LoadGenerator::ScrapeLag() {
  while (!stopping_.load()) {
    int64_t lag = 0;
    for (int port : options_.metrics_ports) {
      absl::StatusOr<std::string> metrics = server::HttpGet(port, "/metrics", absl::Seconds(1));
      if (metrics.ok()) lag += CommandsLag(*metrics);
    }
    int64_t seen = max_lag_.load();
    while (lag > seen && !max_lag_.compare_exchange_weak(seen, lag)) {
    }
    for (int i = 0; i < 10 && !stopping_.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
  }
}

LoadReport LoadGenerator::Run(absl::Duration duration, const std::atomic<bool>& stop) {
  const absl::Time start = absl::Now();
  const absl::Time until = start + duration;
  absl::Mutex pace_mutex;
  absl::Time next_start = start;
  // Journeys start at the asked rate over all people (none waits when 0).
  auto may_start = [&]() {
    if (options_.journeys_per_second <= 0) return true;
    absl::Time at;
    {
      absl::MutexLock lock(&pace_mutex);
      at = next_start = std::max(next_start, absl::Now() - absl::Seconds(1));
      next_start += absl::Seconds(1) / options_.journeys_per_second;
    }
    absl::SleepFor(at - absl::Now());
    return absl::Now() < until && !stop.load();
  };
  std::vector<std::unique_ptr<Person>> people;
  std::vector<std::thread> threads;
  for (int i = 0; i < options_.people; ++i) {
    people.push_back(std::make_unique<Person>(*this, i));
    threads.emplace_back([&, i] { people[i]->Run(until, stop, may_start); });
  }
  std::thread progress([&] {
    while (!stop.load() && absl::Now() < until) {
      for (int i = 0; i < 10 && !stop.load() && absl::Now() < until; ++i) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      if (!options_.progress) continue;
      int64_t failed = 0;
      {
        absl::MutexLock lock(&recorder_->mutex);
        for (const auto& [why, count] : recorder_->failed) failed += count;
      }
      const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
      options_.progress(absl::StrFormat(
          "%4.0f s  journeys: %lld started, %lld completed (%.1f/s), %lld cancelled, "
          "%lld expired, %lld failed; commands waiting: %lld",
          seconds, static_cast<long long>(recorder_->started.load()),
          static_cast<long long>(recorder_->completed.load()),
          recorder_->completed.load() / std::max(seconds, 1e-9),
          static_cast<long long>(recorder_->cancelled.load()),
          static_cast<long long>(recorder_->expired.load()), static_cast<long long>(failed),
          static_cast<long long>(max_lag_.load())));
    }
  });
  for (std::thread& thread : threads) thread.join();
  progress.join();

  LoadReport report;
  report.elapsed = absl::Now() - start;
  const double seconds = absl::ToDoubleSeconds(report.elapsed);
  report.journeys_started = recorder_->started;
  report.journeys_completed = recorder_->completed;
  report.journeys_cancelled = recorder_->cancelled;
  report.journeys_expired = recorder_->expired;
  report.journeys_per_second = report.journeys_completed / seconds;
  report.offers_to_busy_experts = recorder_->offers_to_busy;
  report.offers_unanswered = recorder_->offers_unanswered;
  report.max_commands_lag = max_lag_;
  absl::MutexLock lock(&recorder_->mutex);
  report.journeys_failed = recorder_->failed;
  for (auto& [method, latencies] : recorder_->latencies_ms) {
    RpcFigures& figures = report.rpcs[method];
    figures.calls = static_cast<int64_t>(latencies.size());
    figures.per_second = figures.calls / seconds;
    figures.p50_ms = Percentile(latencies, 0.50);
    figures.p95_ms = Percentile(latencies, 0.95);
    figures.p99_ms = Percentile(latencies, 0.99);
    figures.errors = recorder_->errors[method];
  }
  report.acknowledged = recorder_->acknowledged;
  report.help_requests = recorder_->help_requests;
  report.people = recorder_->people;
  for (const std::unique_ptr<Expert>& expert : experts_) {
    absl::MutexLock expert_lock(&expert->mutex);
    report.experts.push_back(expert->user.email);
  }
  return report;
}

std::string LoadReport::Text() const {
  int64_t failed = 0;
  for (const auto& [why, count] : journeys_failed) failed += count;
  std::string out = absl::StrFormat(
      "%.1f s: %lld journeys started, %lld completed (%.2f/s), %lld cancelled, %lld expired, "
      "%lld failed\n",
      absl::ToDoubleSeconds(elapsed), static_cast<long long>(journeys_started),
      static_cast<long long>(journeys_completed), journeys_per_second,
      static_cast<long long>(journeys_cancelled), static_cast<long long>(journeys_expired),
      static_cast<long long>(failed));
  for (const auto& [why, count] : journeys_failed) {
    absl::StrAppend(&out, "  failed at ", why, ": ", count, "\n");
  }
  absl::StrAppend(&out, "offers to experts already in a call: ", offers_to_busy_experts,
                  "; offers left to run out: ", offers_unanswered, "; most commands waiting for a processor: ", max_commands_lag, "\n");
  absl::StrAppend(&out, absl::StrFormat("%-16s %8s %8s %8s %8s %8s  %s\n", "RPC", "calls",
                                        "per s", "p50 ms", "p95 ms", "p99 ms", "errors"));
  for (const auto& [method, figures] : rpcs) {
    std::string errors;
    for (const auto& [code, count] : figures.errors) {
      absl::StrAppend(&errors, errors.empty() ? "" : ", ", code, " ", count);
    }
    absl::StrAppend(&out, absl::StrFormat("%-16s %8lld %8.1f %8.1f %8.1f %8.1f  %s\n", method,
                                          static_cast<long long>(figures.calls),
                                          figures.per_second, figures.p50_ms, figures.p95_ms,
                                          figures.p99_ms, errors.empty() ? "-" : errors));
  }
  return out;
}

nlohmann::json LoadReport::Json() const {
  nlohmann::json rpc_figures = nlohmann::json::object();
  for (const auto& [method, figures] : rpcs) {
    rpc_figures[method] = {{"calls", figures.calls},   {"per_second", figures.per_second},
                           {"p50_ms", figures.p50_ms}, {"p95_ms", figures.p95_ms},
                           {"p99_ms", figures.p99_ms}, {"errors", figures.errors}};
  }
  return {{"seconds", absl::ToDoubleSeconds(elapsed)},
          {"journeys_started", journeys_started},
          {"journeys_completed", journeys_completed},
          {"journeys_cancelled", journeys_cancelled},
          {"journeys_expired", journeys_expired},
          {"journeys_failed", journeys_failed},
          {"journeys_per_sec", journeys_per_second},
          {"writes_acknowledged", acknowledged.size()},
          {"offers_to_busy_experts", offers_to_busy_experts},
          {"offers_unanswered", offers_unanswered},
          {"max_commands_lag", max_commands_lag},
          {"rpcs", rpc_figures}};
}

}  // namespace helpline::load
