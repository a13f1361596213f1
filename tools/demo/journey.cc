#include "tools/demo/journey.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"

namespace helpline::demo {
namespace {

using client::Client;
using client::User;
using CatalogStub = catalog::v1::CatalogService::Stub;
using IdentityStub = identity::v1::IdentityService::Stub;
using MatchingStub = matching::v1::MatchingService::Stub;
using PaymentsStub = payments::v1::PaymentsService::Stub;
using SessionsStub = sessions::v1::SessionsService::Stub;

constexpr char kPassword[] = "demo-password-1";
constexpr char kBikes[] = "bike-repair";
constexpr char kCurrency[] = "EUR";
constexpr char kProgramName[] = "Bike to work";

// Seeding again finds what the last run made: that is no error.
absl::Status AlreadyDone(absl::Status status) {
  if (status.code() == absl::StatusCode::kAlreadyExists ||
      status.code() == absl::StatusCode::kFailedPrecondition) {
    return absl::OkStatus();
  }
  return status;
}

runtime::v1::Money Amount(int64_t minor) {
  runtime::v1::Money money;
  money.set_currency_code(kCurrency);
  money.set_amount_minor(minor);
  return money;
}

catalog::v1::ProfileContent Profile(const std::string& name, const std::string& category,
                                    const std::vector<std::string>& languages, int64_t rate) {
  catalog::v1::ProfileContent content;
  content.set_public_name(name);
  content.set_headline(absl::StrCat(name, " helps with ", category));
  content.set_bio(absl::StrCat("Years of experience in ", category, ".\nAsk me anything."));
  content.add_skills(category);
  content.add_category_ids(category);
  for (const std::string& language : languages) content.add_languages(language);
  catalog::v1::PerMinutePrice& price = *content.mutable_price()->mutable_per_minute();
  *price.mutable_rate() = Amount(rate);
  price.set_minimum_minutes(5);
  catalog::v1::Availability& availability = *content.mutable_availability();
  availability.set_time_zone("Europe/Berlin");
  catalog::v1::WeeklyWindow& monday = *availability.add_weekly();
  monday.set_weekday(catalog::v1::WEEKDAY_MONDAY);
  monday.mutable_time()->set_start_minute(9 * 60);
  monday.mutable_time()->set_end_minute(17 * 60);
  return content;
}

std::string EmailOf(const std::string& name, const std::string& tag = "") {
  return absl::StrCat(absl::AsciiStrToLower(name), tag.empty() ? "" : ".", tag,
                      "@demo.helpline.local");
}

// Retries `call` while it answers `code` (a projection not caught up yet).
absl::Status RetryWhile(absl::StatusCode code, absl::Duration wait,
                        const std::function<absl::Status()>& call) {
  const absl::Time deadline = absl::Now() + wait;
  absl::Status status = call();
  while (status.code() == code && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    status = call();
  }
  return status;
}

}  // namespace

Journey::Journey(Client& client, JourneyOptions options, Say say)
    : client_(client), options_(std::move(options)), say_(std::move(say)) {}

Journey::~Journey() {
  stopping_ = true;
  if (heartbeats_.joinable()) heartbeats_.join();
}

absl::Duration Journey::Real(absl::Duration service_time) const {
  return service_time / options_.clock_rate;
}

std::string Journey::Money(int64_t minor) const {
  return absl::StrFormat("%s%d.%02d %s", minor < 0 ? "-" : "", std::abs(minor) / 100,
                         std::abs(minor) % 100, kCurrency);
}

absl::StatusOr<std::string> Journey::TokenOf(User& user) {
  absl::MutexLock lock(&tokens_);
  return client_.Token(user);
}

absl::StatusOr<User> Journey::Account(const std::string& email, const std::string& name,
                                      identity::v1::AccountType type) {
  identity::v1::RegisterRequest request;
  request.set_request_id(absl::StrCat("demo-register-", email));
  request.set_email(email);
  request.set_password(kPassword);
  request.set_display_name(name);
  request.set_account_type(type);
  identity::v1::RegisterResponse response;
  if (absl::Status s = AlreadyDone(
          Client::Call(client_.identity(), &IdentityStub::Register, "", request, &response));
      !s.ok()) {
    return s;
  }
  return client_.SignIn(email, kPassword);
}

absl::Status Journey::SeedExpert(const std::string& name, const std::string& category,
                                 const std::vector<std::string>& languages, int64_t rate) {
  const std::string email = EmailOf(name);
  absl::StatusOr<User> user = Account(email, name, identity::v1::ACCOUNT_TYPE_PERSON);
  if (!user.ok()) return user.status();
  if (!client::HasRole(user->access_token, "expert")) {
    catalog::v1::CreateProfileRequest create;
    create.set_request_id(absl::StrCat("demo-profile-", email));
    *create.mutable_content() = Profile(name, category, languages, rate);
    catalog::v1::CreateProfileResponse created;
    catalog::v1::SubmitProfileRequest submit;
    submit.set_request_id(absl::StrCat("demo-submit-", email));
    catalog::v1::SubmitProfileResponse submitted;
    catalog::v1::ApproveProfileRequest approve;
    approve.set_request_id(absl::StrCat("demo-approve-", email));
    approve.set_expert_id(user->user_id);
    catalog::v1::ApproveProfileResponse approved;
    for (absl::Status step :
         {AlreadyDone(Client::Call(client_.catalog(), &CatalogStub::CreateProfile,
                                   user->access_token, create, &created)),
          AlreadyDone(Client::Call(client_.catalog(), &CatalogStub::SubmitProfile,
                                   user->access_token, submit, &submitted)),
          AlreadyDone(Client::Call(client_.catalog(), &CatalogStub::ApproveProfile,
                                   *TokenOf(admin_), approve, &approved))}) {
      if (!step.ok()) return step;
    }
  }
  catalog::v1::PublishProfileRequest publish;
  publish.set_request_id(absl::StrCat("demo-publish-", email));
  catalog::v1::PublishProfileResponse published;
  if (absl::Status s = AlreadyDone(Client::Call(client_.catalog(), &CatalogStub::PublishProfile,
                                                user->access_token, publish, &published));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<User> expert = client_.WaitForRole(*std::move(user), "expert");
  if (!expert.ok()) return expert.status();
  experts_.push_back({*std::move(expert), name});
  say_(absl::StrCat("  ", name, ": approved expert in ", category, " (",
                    absl::StrJoin(languages, ", "), "), ", Money(rate), " a minute"));
  return absl::OkStatus();
}

absl::Status Journey::SeedSponsor() {
  absl::StatusOr<User> sponsor =
      Account(EmailOf("acme"), "Acme Cycling", identity::v1::ACCOUNT_TYPE_ORGANISATION);
  if (!sponsor.ok()) return sponsor.status();
  absl::StatusOr<User> with_role = client_.WaitForRole(*std::move(sponsor), "sponsor");
  if (!with_role.ok()) return with_role.status();
  sponsor_ = *std::move(with_role);
  catalog::v1::ListSponsorProgramsRequest list;
  list.set_sponsor_id(sponsor_.user_id);
  catalog::v1::ListSponsorProgramsResponse listed;
  if (absl::Status s = Client::Call(client_.catalog(), &CatalogStub::ListSponsorPrograms,
                                    *TokenOf(sponsor_), list, &listed);
      !s.ok()) {
    return s;
  }
  for (const catalog::v1::SponsorProgram& program : listed.programs()) {
    if (program.terms().name() == kProgramName) program_id_ = program.program_id();
  }
  if (program_id_.empty()) {
    catalog::v1::CreateSponsorProgramRequest create;
    create.set_request_id(absl::StrCat("demo-program-", sponsor_.user_id));
    catalog::v1::SponsorProgramTerms& terms = *create.mutable_terms();
    terms.set_name(kProgramName);
    terms.set_description("Acme pays one bike repair session per employee.");
    terms.add_category_ids(kBikes);
    terms.set_free_sessions_per_person(1);
    terms.set_max_minutes_per_session(30);
    *terms.mutable_active_from() = ToProtoTime(absl::Now() - absl::Hours(24));
    catalog::v1::CreateSponsorProgramResponse created;
    if (absl::Status s = Client::Call(client_.catalog(), &CatalogStub::CreateSponsorProgram,
                                      *TokenOf(sponsor_), create, &created);
        !s.ok()) {
      return s;
    }
    program_id_ = created.program().program_id();
  }
  absl::StatusOr<payments::v1::GetBalanceResponse> balance = Balance(sponsor_);
  if (!balance.ok()) return balance.status();
  if (balance->sponsor().budget().amount_minor() < 5000) {
    payments::v1::FundSponsorBudgetRequest fund;
    fund.set_request_id(ids::NewUuidV7());
    *fund.mutable_amount() = Amount(20000);
    payments::v1::FundSponsorBudgetResponse funded;
    if (absl::Status s = Client::Call(client_.payments(), &PaymentsStub::FundSponsorBudget,
                                      *TokenOf(sponsor_), fund, &funded);
        !s.ok()) {
      return s;
    }
    balance = BalanceWhen(sponsor_, [](const payments::v1::GetBalanceResponse& b) {
      return b.sponsor().budget().amount_minor() >= 5000;
    });
    if (!balance.ok()) return balance.status();
  }
  say_(absl::StrCat("  Acme Cycling sponsors \"", kProgramName,
                    "\" (one free bike repair session per person); budget ",
                    Money(balance->sponsor().budget().amount_minor())));
  return absl::OkStatus();
}

absl::Status Journey::Seed() {
  // Identity creates the admin's account from its config as it starts.
  absl::StatusOr<User> admin = client_.SignIn(options_.admin_email, options_.admin_password);
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);
       admin.status().code() == absl::StatusCode::kUnauthenticated && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(300));
    admin = client_.SignIn(options_.admin_email, options_.admin_password);
  }
  if (!admin.ok()) return admin.status();
  admin_ = *std::move(admin);
  say_("Seeding the demo (what a previous run made is reused):");
  for (const auto& [id, name] : std::vector<std::pair<std::string, std::string>>{
           {kBikes, "Bike repair"}, {"cooking", "Cooking"}, {"tax-returns", "Tax returns"}}) {
    catalog::v1::CreateCategoryRequest request;
    request.set_request_id(absl::StrCat("demo-category-", id));
    request.set_category_id(id);
    request.set_name(name);
    catalog::v1::CreateCategoryResponse response;
    if (absl::Status s = AlreadyDone(Client::Call(client_.catalog(), &CatalogStub::CreateCategory,
                                                  *TokenOf(admin_), request, &response));
        !s.ok()) {
      return s;
    }
  }
  say_("  categories: bike-repair, cooking, tax-returns");
  if (absl::Status s = SeedExpert("Ben", kBikes, {"de", "en"}, 150); !s.ok()) return s;
  if (absl::Status s = SeedExpert("Mia", "cooking", {"en", "fr"}, 120); !s.ok()) return s;
  if (absl::Status s = SeedExpert("Omar", "tax-returns", {"en", "ar"}, 200); !s.ok()) return s;
  heartbeats_ = std::thread([this] {
    while (!stopping_.load()) {
      for (Expert& expert : experts_) {
        absl::StatusOr<std::string> token = TokenOf(expert.user);
        if (!token.ok()) continue;
        matching::v1::HeartbeatRequest beat;
        beat.set_status(matching::v1::PRESENCE_STATUS_AVAILABLE);
        matching::v1::HeartbeatResponse answered;
        Client::Call(client_.matching(), &MatchingStub::Heartbeat, *token, beat, &answered)
            .IgnoreError();
      }
      for (int i = 0; i < 20 && !stopping_.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
    }
  });
  say_("  Ben, Mia and Omar are online (heartbeating)");
  return SeedSponsor();
}

absl::StatusOr<payments::v1::GetBalanceResponse> Journey::Balance(User& user) {
  absl::StatusOr<std::string> token = TokenOf(user);
  if (!token.ok()) return token.status();
  payments::v1::GetBalanceResponse balance;
  if (absl::Status s = Client::Call(client_.payments(), &PaymentsStub::GetBalance, *token,
                                    payments::v1::GetBalanceRequest(), &balance);
      !s.ok()) {
    return s;
  }
  return balance;
}

absl::StatusOr<payments::v1::GetBalanceResponse> Journey::BalanceWhen(
    User& user, const std::function<bool(const payments::v1::GetBalanceResponse&)>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60) + Real(options_.refund_window);
  while (true) {
    absl::StatusOr<payments::v1::GetBalanceResponse> balance = Balance(user);
    if (!balance.ok() || done(*balance)) return balance;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the balance of ", user.email, " did not get there: ",
                       balance->ShortDebugString()));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

absl::StatusOr<User> Journey::Person(const std::string& name) {
  return Account(EmailOf(name, options_.run_tag), name, identity::v1::ACCOUNT_TYPE_PERSON);
}

absl::StatusOr<std::string> Journey::MatchWithBen(User& person, const std::string& program,
                                                  JourneyReport* report) {
  User& ben = experts_.front().user;
  matching::v1::RequestHelpRequest ask;
  ask.set_request_id(ids::NewUuidV7());
  ask.set_category_id(kBikes);
  ask.set_language("de");
  ask.set_description("My gears slip on the big cog and the chain rattles.");
  *ask.mutable_budget()->mutable_max_per_minute() = Amount(200);
  ask.set_max_minutes(30);
  ask.set_sponsor_program_id(program);
  matching::v1::RequestHelpResponse asked;
  // Matching may not have read the newest category, expert or program yet.
  absl::Status requested = RetryWhile(absl::StatusCode::kInvalidArgument, absl::Seconds(30), [&] {
    return Client::Call(client_.matching(), &MatchingStub::RequestHelp, *TokenOf(person), ask,
                        &asked);
  });
  if (!requested.ok()) return requested;
  const absl::Time asked_at = absl::Now();
  say_(absl::StrCat("  ", person.email, " asks for bike-repair help now (German, up to ",
                    Money(200), " a minute, 30 minutes at most",
                    program.empty() ? "" : ", sponsored by Acme", ")"));
  matching::v1::GetRequestRequest get;
  get.set_help_request_id(asked.help_request().help_request_id());
  matching::v1::GetRequestResponse got;
  // The answer shows the request as written: in line, unless the
  // dispatcher was quicker still (then the polls below see the offer).
  *got.mutable_help_request() = asked.help_request();
  bool told_position = false;
  for (bool first = true;; first = false) {
    if (!first) absl::SleepFor(absl::Milliseconds(100));
    if (!first) {
      if (absl::Status s = Client::Call(client_.matching(), &MatchingStub::GetRequest,
                                        *TokenOf(person), get, &got);
          !s.ok()) {
        return s;
      }
    }
    const matching::v1::HelpRequest& request = got.help_request();
    if (request.status() == matching::v1::HELP_REQUEST_STATUS_WAITING && !told_position &&
        request.position() > 0) {
      told_position = true;
      if (report != nullptr) report->first_position = request.position();
      say_(absl::StrCat("  waiting in line at position ", request.position()));
    }
    if (request.status() == matching::v1::HELP_REQUEST_STATUS_OFFERED &&
        request.offer().expert_id() == ben.user_id) {
      break;
    }
    if (request.status() != matching::v1::HELP_REQUEST_STATUS_WAITING &&
        request.status() != matching::v1::HELP_REQUEST_STATUS_OFFERED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the request ended ", matching::v1::HelpRequestStatus_Name(request.status())));
    }
    if (absl::Now() - asked_at > absl::Seconds(60)) {
      return absl::DeadlineExceededError("no offer to Ben within a minute");
    }
  }
  matching::v1::AcceptOfferRequest accept;
  accept.set_offer_id(got.help_request().offer().offer_id());
  matching::v1::AcceptOfferResponse accepted;
  if (absl::Status s = Client::Call(client_.matching(), &MatchingStub::AcceptOffer,
                                    *TokenOf(ben), accept, &accepted);
      !s.ok()) {
    return s;
  }
  const matching::v1::Match& match = accepted.help_request().match();
  say_(absl::StrFormat("  Ben is offered the request and accepts: matched after %.1f s; %s held",
                       absl::ToDoubleSeconds(absl::Now() - asked_at),
                       Money(match.max_amount().amount_minor())));
  return match.match_id();
}

RoomParticipant::RoomParticipant(const std::string& python, const std::string& script,
                                 const sessions::v1::JoinSessionResponse& joined) {
  char name[] = "/tmp/helpline-participant-XXXXXX";
  int fd = mkstemp(name);
  output_file_ = name;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execl(python.c_str(), python.c_str(), script.c_str(), joined.livekit_url().c_str(),
          joined.room_token().c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fd);
}

RoomParticipant::~RoomParticipant() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  unlink(output_file_.c_str());
}

std::string RoomParticipant::Output() const {
  std::ifstream in(output_file_);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool RoomParticipant::AwaitOutput(const std::string& text, absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Output().find(text) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

absl::Status RoomParticipant::AwaitConnected(absl::Duration timeout) const {
  if (pid_ < 0) return absl::InternalError("cannot start a participant");
  if (AwaitOutput("connected PA_", timeout)) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("a participant could not join the LiveKit room: ", Output()));
}

bool RoomParticipant::AwaitDisconnected(absl::Duration timeout) const {
  return AwaitOutput("disconnected", timeout);
}

absl::StatusOr<sessions::v1::Session> Journey::Call(User& person, const std::string& session,
                                                    double minutes) {
  User& ben = experts_.front().user;
  auto get = [&](User& who) -> absl::StatusOr<sessions::v1::Session> {
    sessions::v1::GetSessionRequest request;
    request.set_session_id(session);
    sessions::v1::GetSessionResponse response;
    absl::Status s =
        Client::Call(client_.sessions(), &SessionsStub::GetSession, *TokenOf(who), request, &response);
    if (!s.ok()) return s;
    return response.session();
  };
  // Sessions creates the session when it reads the match.
  absl::Status created = RetryWhile(absl::StatusCode::kNotFound, absl::Seconds(30),
                                    [&] { return get(person).status(); });
  if (!created.ok()) return created;
  std::vector<std::unique_ptr<RoomParticipant>> in_room;
  for (User* who : {&person, &ben}) {
    sessions::v1::JoinSessionRequest join;
    join.set_session_id(session);
    sessions::v1::JoinSessionResponse joined;
    if (absl::Status s = Client::Call(client_.sessions(), &SessionsStub::JoinSession,
                                      *TokenOf(*who), join, &joined);
        !s.ok()) {
      return s;
    }
    if (who == &person) person_join_ = joined;
    if (joined.session().connection_source() != sessions::v1::CONNECTION_SOURCE_MEDIA_SERVER) {
      continue;
    }
    // Billed from what LiveKit reports: someone must really be in the room.
    if (options_.participant_python.empty()) {
      return absl::FailedPreconditionError(
          "sessions bills from LiveKit: the demo needs --participant-python and "
          "--participant-script");
    }
    in_room.push_back(std::make_unique<RoomParticipant>(
        options_.participant_python, options_.participant_script, joined));
    if (absl::Status connected = in_room.back()->AwaitConnected(absl::Seconds(30));
        !connected.ok()) {
      return connected;
    }
  }
  if (!in_room.empty()) {
    absl::Status live = RetryWhile(absl::StatusCode::kUnavailable, absl::Seconds(30), [&] {
      absl::StatusOr<sessions::v1::Session> now = get(person);
      if (!now.ok()) return now.status();
      if (now->status() == sessions::v1::SESSION_STATUS_LIVE) return absl::OkStatus();
      return absl::UnavailableError("LiveKit has not reported both in the room");
    });
    if (!live.ok()) return live;
    say_(absl::StrCat("  both join the LiveKit room ", session,
                      " for real (headless participants); LiveKit's webhooks say both are in"));
  }
  say_(absl::StrFormat("  both join the video call; %.0f minutes pass (%.1f s of demo time)",
                       std::ceil(minutes),
                       absl::ToDoubleSeconds(Real(absl::Minutes(1) * minutes))));
  absl::SleepFor(Real(absl::Minutes(1) * minutes));
  sessions::v1::EndSessionRequest end;
  end.set_session_id(session);
  sessions::v1::EndSessionResponse ended;
  if (absl::Status s =
          Client::Call(client_.sessions(), &SessionsStub::EndSession, *TokenOf(ben), end, &ended);
      !s.ok()) {
    return s;
  }
  if (ended.session().status() != sessions::v1::SESSION_STATUS_ENDED) {
    return absl::InternalError(absl::StrCat("the session did not end: ",
                                            ended.session().ShortDebugString()));
  }
  bool all_out = !in_room.empty();
  for (auto& participant : in_room) {
    all_out = participant->AwaitDisconnected(absl::Seconds(15)) && all_out;
  }
  if (all_out) say_("  the room is closed with the session: LiveKit puts both out");
  return ended.session();
}

absl::StatusOr<JourneyReport> Journey::Run() {
  if (experts_.empty()) return absl::FailedPreconditionError("Seed first");
  JourneyReport report;
  User& ben = experts_.front().user;
  report.category_id = kBikes;
  report.expert_id = ben.user_id;
  absl::StatusOr<User> anna = Person("Anna");
  absl::StatusOr<User> cleo = Person("Cleo");
  absl::StatusOr<User> dan = Person("Dan");
  for (const auto* person : {&anna, &cleo, &dan}) {
    if (!person->ok()) return person->status();
  }
  absl::StatusOr<payments::v1::GetBalanceResponse> ben_before = Balance(ben);
  if (!ben_before.ok()) return ben_before.status();

  // 1. Help now, billed per minute.
  say_("\n1. Anna needs her bike fixed, now.");
  absl::StatusOr<std::string> first = MatchWithBen(*anna, "", &report);
  if (!first.ok()) return first.status();
  report.paid_session_id = *first;
  absl::StatusOr<sessions::v1::Session> call = Call(*anna, *first, 11.5);
  if (!call.ok()) return call.status();
  report.anna_join = person_join_;
  report.billed_minutes = call->billing().billed_minutes();
  report.billed_minor = call->billing().amount().amount_minor();
  say_(absl::StrCat("  Ben ends the call: ", report.billed_minutes, " started minutes billed, ",
                    Money(report.billed_minor)));
  absl::StatusOr<payments::v1::GetBalanceResponse> anna_paid =
      BalanceWhen(*anna, [&](const auto& b) { return b.person().spent().amount_minor() > 0; });
  if (!anna_paid.ok()) return anna_paid.status();
  report.person_spent_minor = anna_paid->person().spent().amount_minor();
  payments::v1::ListTransfersRequest list;
  list.set_page_size(100);
  payments::v1::ListTransfersResponse transfers;
  if (absl::Status s = Client::Call(client_.payments(), &PaymentsStub::ListTransfers,
                                    *TokenOf(ben), list, &transfers);
      !s.ok()) {
    return s;
  }
  for (const payments::v1::Transfer& transfer : transfers.transfers()) {
    if (transfer.transfer_id() == "capture-share:" + *first) {
      report.expert_share_minor = transfer.amount();
    }
  }
  report.fee_minor = report.billed_minor - report.expert_share_minor;
  say_(absl::StrCat("  Anna's card is charged ", Money(report.person_spent_minor), ": Ben earns ",
                    Money(report.expert_share_minor), ", Helpline keeps ", Money(report.fee_minor),
                    " (20%)"));

  // 2. A review.
  auto ben_in_search = [&]() -> absl::StatusOr<catalog::v1::Rating> {
    catalog::v1::SearchExpertsRequest search;
    search.set_category_id(kBikes);
    catalog::v1::SearchExpertsResponse found;
    absl::Status s = Client::Call(client_.catalog(), &CatalogStub::SearchExperts, *TokenOf(*anna),
                                  search, &found);
    if (!s.ok()) return s;
    for (const catalog::v1::ExpertHit& hit : found.hits()) {
      if (hit.expert_id() == ben.user_id) return hit.rating();
    }
    return absl::NotFoundError("Ben is not in the search results");
  };
  absl::StatusOr<catalog::v1::Rating> before = ben_in_search();
  if (!before.ok()) return before.status();
  report.reviews_before = before->review_count();
  sessions::v1::SubmitReviewRequest review;
  review.set_session_id(*first);
  review.set_stars(5);
  review.set_text("Gears shift like new. Patient and clear.");
  sessions::v1::SubmitReviewResponse reviewed;
  if (absl::Status s = Client::Call(client_.sessions(), &SessionsStub::SubmitReview,
                                    *TokenOf(*anna), review, &reviewed);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<catalog::v1::Rating> after = before;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);
       after.ok() && after->review_count() == report.reviews_before && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(200));
    after = ben_in_search();
  }
  if (!after.ok()) return after.status();
  report.reviews_after = after->review_count();
  report.stars_after = after->average_stars();
  say_(absl::StrFormat("  Anna gives 5 stars; in search Ben now has %d review%s, %.1f stars "
                       "on average (ranked by %.2f, pulled towards the prior)",
                       report.reviews_after, report.reviews_after == 1 ? "" : "s",
                       report.stars_after, after->score()));

  // 3. A sponsored session.
  say_("\n2. Cleo works at Acme: her session is on the company.");
  absl::StatusOr<payments::v1::GetBalanceResponse> sponsor_before = Balance(sponsor_);
  if (!sponsor_before.ok()) return sponsor_before.status();
  report.sponsor_spent_before_minor = sponsor_before->sponsor().spent().amount_minor();
  absl::StatusOr<std::string> second = MatchWithBen(*cleo, program_id_, nullptr);
  if (!second.ok()) return second.status();
  report.sponsored_session_id = *second;
  call = Call(*cleo, *second, 3);
  if (!call.ok()) return call.status();
  report.sponsored_billed_minor = call->billing().amount().amount_minor();
  absl::StatusOr<payments::v1::GetBalanceResponse> sponsor_after =
      BalanceWhen(sponsor_, [&](const auto& b) {
        return b.sponsor().spent().amount_minor() > report.sponsor_spent_before_minor;
      });
  if (!sponsor_after.ok()) return sponsor_after.status();
  report.sponsor_spent_after_minor = sponsor_after->sponsor().spent().amount_minor();
  absl::StatusOr<payments::v1::GetBalanceResponse> cleo_paid = Balance(*cleo);
  if (!cleo_paid.ok()) return cleo_paid.status();
  report.sponsored_person_spent_minor = cleo_paid->person().spent().amount_minor();
  say_(absl::StrCat("  billed the minimum, ", Money(report.sponsored_billed_minor),
                    ", from Acme's budget (left: ",
                    Money(sponsor_after->sponsor().budget().amount_minor()), "); Cleo pays ",
                    Money(report.sponsored_person_spent_minor)));

  // 4. A refund under the guarantee.
  say_("\n3. Dan's chain comes off again on the way home: money back.");
  absl::StatusOr<std::string> third = MatchWithBen(*dan, "", nullptr);
  if (!third.ok()) return third.status();
  report.refunded_session_id = *third;
  call = Call(*dan, *third, 3);
  if (!call.ok()) return call.status();
  if (absl::StatusOr<payments::v1::GetBalanceResponse> dan_paid = BalanceWhen(
          *dan, [](const auto& b) { return b.person().spent().amount_minor() > 0; });
      !dan_paid.ok()) {
    return dan_paid.status();
  }
  sessions::v1::RequestRefundRequest refund;
  refund.set_session_id(*third);
  refund.set_reason("The chain came off again on the way home.");
  sessions::v1::RequestRefundResponse refunded;
  if (absl::Status s = Client::Call(client_.sessions(), &SessionsStub::RequestRefund,
                                    *TokenOf(*dan), refund, &refunded);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<payments::v1::GetBalanceResponse> dan_back =
      BalanceWhen(*dan, [](const auto& b) { return b.person().refunded().amount_minor() > 0; });
  if (!dan_back.ok()) return dan_back.status();
  report.refunded_minor = dan_back->person().refunded().amount_minor();
  if (absl::Status s = Client::Call(client_.payments(), &PaymentsStub::ListTransfers,
                                    *TokenOf(ben), list, &transfers);
      !s.ok()) {
    return s;
  }
  for (const payments::v1::Transfer& transfer : transfers.transfers()) {
    if (transfer.transfer_id() == "refund-share:" + *third) {
      report.refunded_share_minor = transfer.amount();
    }
  }
  say_(absl::StrCat("  refunded automatically: ", Money(report.refunded_minor), " back to Dan's card (",
                    Money(report.refunded_share_minor), " from Ben's earnings, the rest from "
                    "Helpline's commission)"));

  // 5. The payout, once the refund window has passed.
  say_(absl::StrFormat(
      "\n4. Ben's earnings become available after the refund window (%s; %.0f s of demo time).",
      absl::FormatDuration(options_.refund_window),
      absl::ToDoubleSeconds(Real(options_.refund_window))));
  absl::StatusOr<payments::v1::GetBalanceResponse> available = BalanceWhen(ben, [](const auto& b) {
    return b.expert().pending().amount_minor() == 0 && b.expert().available().amount_minor() > 0;
  });
  if (!available.ok()) return available.status();
  say_(absl::StrCat("  available: ", Money(available->expert().available().amount_minor()),
                    "; Ben asks for a payout"));
  payments::v1::RequestPayoutRequest payout;
  payout.set_request_id(ids::NewUuidV7());
  payments::v1::RequestPayoutResponse paying;
  if (absl::Status s = Client::Call(client_.payments(), &PaymentsStub::RequestPayout,
                                    *TokenOf(ben), payout, &paying);
      !s.ok()) {
    return s;
  }
  const int64_t paid_before = available->expert().paid_out().amount_minor();
  absl::StatusOr<payments::v1::GetBalanceResponse> paid = BalanceWhen(ben, [&](const auto& b) {
    return b.expert().paid_out().amount_minor() > paid_before;
  });
  if (!paid.ok()) return paid.status();
  report.payout_minor = paid->expert().paid_out().amount_minor() - paid_before;
  report.expert_balance = *paid;
  say_(absl::StrCat("  paid out ", Money(report.payout_minor), " to Ben's bank account; available ",
                    Money(paid->expert().available().amount_minor()), ", paid out in all ",
                    Money(paid->expert().paid_out().amount_minor())));

  // Everyone's money at the end.
  for (auto [who, user] : std::vector<std::pair<std::string, User*>>{
           {"Anna", &*anna}, {"Cleo", &*cleo}, {"Dan", &*dan}, {"Acme Cycling", &sponsor_}}) {
    absl::StatusOr<payments::v1::GetBalanceResponse> balance = Balance(*user);
    if (!balance.ok()) return balance.status();
    report.balances.emplace_back(who, *balance);
  }
  report.balances.emplace_back("Ben", *paid);

  // The ledger checks itself.
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);;) {
    report.reconcile.Clear();
    if (absl::Status s = Client::Call(client_.payments(), &PaymentsStub::Reconcile,
                                      *TokenOf(admin_), payments::v1::ReconcileRequest(),
                                      &report.reconcile);
        !s.ok()) {
      return s;
    }
    if (report.reconcile.problems().empty() || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(300));
  }
  return report;
}

}  // namespace helpline::demo
