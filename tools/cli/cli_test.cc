#include "tools/cli/cli.h"

#include "gtest/gtest.h"
#include "helpline/matching/v1/matching.pb.h"
#include "helpline/payments/v1/payments.pb.h"

namespace helpline::cli {
namespace {

const google::protobuf::MethodDescriptor& Method(const std::string& service, const std::string& name) {
  const google::protobuf::ServiceDescriptor* found = FindService(service);
  EXPECT_NE(found, nullptr) << service;
  const google::protobuf::MethodDescriptor* method = FindMethod(*found, name);
  EXPECT_NE(method, nullptr) << name;
  return *method;
}

TEST(Cli, EveryRpcOfTheFiveServicesHasACommand) {
  int methods = 0;
  for (const std::string& name : ServiceNames()) {
    const google::protobuf::ServiceDescriptor* service = FindService(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string command = CommandName(service->method(i)->name());
      EXPECT_EQ(FindMethod(*service, command), service->method(i)) << command;
      ++methods;
    }
  }
  EXPECT_GE(methods, 40);
  EXPECT_EQ(CommandName("SearchExperts"), "search-experts");
}

TEST(Cli, FlagsBecomeTheRequest) {
  auto request = BuildRequest(Method("matching", "request-help"),
                              {{"category-id", "bike-repair"},
                               {"budget.max-per-minute", "2.50 eur"},
                               {"max_minutes", "20"}},
                              R"({"language": "de", "description": "from --data"})");
  ASSERT_TRUE(request.ok()) << request.status();
  const auto& ask = static_cast<const matching::v1::RequestHelpRequest&>(**request);
  EXPECT_EQ(ask.category_id(), "bike-repair");
  EXPECT_EQ(ask.budget().max_per_minute().amount_minor(), 250);
  EXPECT_EQ(ask.budget().max_per_minute().currency_code(), "EUR");
  EXPECT_EQ(ask.max_minutes(), 20);
  EXPECT_EQ(ask.language(), "de");
  EXPECT_FALSE(ask.request_id().empty()) << "a request id is made up when left out";

  auto heartbeat = BuildRequest(Method("matching", "Heartbeat"), {{"status", "busy"}}, "");
  ASSERT_TRUE(heartbeat.ok()) << heartbeat.status();
  EXPECT_EQ(static_cast<const matching::v1::HeartbeatRequest&>(**heartbeat).status(),
            matching::v1::PRESENCE_STATUS_BUSY);
}

TEST(Cli, BadFlagsNameTheFlag) {
  const auto& ask = Method("matching", "request-help");
  for (const auto& [flags, named] : std::vector<std::pair<Flags, std::string>>{
           {{{"max-minutes", "twenty"}}, "max-minutes"},
           {{{"no-such-field", "x"}}, "no_such_field"},
           {{{"budget.max-per-minute", "lots"}}, "budget.max-per-minute"},
           {{{"budget", "x"}}, "budget"}}) {
    auto request = BuildRequest(ask, flags, "");
    ASSERT_FALSE(request.ok());
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(request.status().message().find(named), std::string::npos) << request.status();
  }
  EXPECT_FALSE(BuildRequest(ask, {}, "[1, 2]").ok()) << "--data must be an object";
}

TEST(Cli, AnswersReadForPeopleWithMoneyAndShortEnums) {
  payments::v1::GetBalanceResponse balance;
  balance.mutable_expert()->mutable_available()->set_currency_code("EUR");
  balance.mutable_expert()->mutable_available()->set_amount_minor(1805);
  EXPECT_NE(Human(balance).find("available: 18.05 EUR"), std::string::npos) << Human(balance);
  matching::v1::RequestHelpResponse asked;
  asked.mutable_help_request()->set_status(matching::v1::HELP_REQUEST_STATUS_WAITING);
  asked.mutable_help_request()->set_position(2);
  const std::string text = Human(asked);
  EXPECT_NE(text.find("status: WAITING"), std::string::npos) << text;
  EXPECT_NE(text.find("position: 2"), std::string::npos) << text;
  EXPECT_NE(Json(asked).find("\"HELP_REQUEST_STATUS_WAITING\""), std::string::npos);
}

}  // namespace
}  // namespace helpline::cli
