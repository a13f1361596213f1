// helpline-demo: the guided demo of the journey against the local stack
// (tools/run runs it): seeds demo data, narrates a paid session, a review,
// a sponsored session, a refund and a payout, then prints the ledger's
// check. The services must run on the clock rate given here.
//
//   helpline-demo --admin-password-file F [--admin-email E] [--base-port 7000]
//                 [--clock-rate 60] [--refund-window 10m]
//                 [--participant-python P --participant-script S]
// Where sessions bills from LiveKit, the people join the room for real with
// P S (tools/media/livekit_participant.py).
#include <fstream>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/runtime/core/ids.h"
#include "tools/demo/journey.h"

namespace {

int Fail(const std::string& message) {
  std::cerr << "helpline-demo: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace helpline;  // NOLINT: a small program
  demo::JourneyOptions options;
  options.admin_email = "admin@helpline.local";
  options.clock_rate = 60;
  options.refund_window = absl::Minutes(10);
  int base_port = 7000;
  std::string password_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const std::string value = argv[i + 1];
    bool ok = true;
    if (name == "--admin-email") {
      options.admin_email = value;
    } else if (name == "--admin-password-file") {
      password_file = value;
    } else if (name == "--base-port") {
      ok = absl::SimpleAtoi(value, &base_port);
    } else if (name == "--clock-rate") {
      ok = absl::SimpleAtod(value, &options.clock_rate) && options.clock_rate >= 1;
    } else if (name == "--refund-window") {
      ok = absl::ParseDuration(value, &options.refund_window);
    } else if (name == "--participant-python") {
      options.participant_python = value;
    } else if (name == "--participant-script") {
      options.participant_script = value;
    } else {
      ok = false;
    }
    if (!ok) return Fail(absl::StrCat("bad flag ", name, " ", value));
  }
  std::ifstream secret(password_file);
  if (!std::getline(secret, options.admin_password)) {
    return Fail("--admin-password-file must name a file with the admin's password");
  }
  options.admin_password = std::string(absl::StripAsciiWhitespace(options.admin_password));
  options.run_tag = ids::NewUuidV7().substr(24);

  client::Client client(client::Targets::Local(base_port));
  auto say = [](const std::string& line) { std::cout << line << std::endl; };
  std::cout << "Helpline's guided demo, on demo time: the services' clock runs " << options.clock_rate
            << " times faster than yours, so a minute of a session takes " << 60 / options.clock_rate
            << " s.\n\n";
  demo::Journey journey(client, options, say);
  if (absl::Status seeded = journey.Seed(); !seeded.ok()) {
    return Fail(absl::StrCat("seeding failed: ", seeded.ToString()));
  }
  absl::StatusOr<demo::JourneyReport> report = journey.Run();
  if (!report.ok()) return Fail(absl::StrCat("the journey stopped: ", report.status().ToString()));
  auto money = [](const runtime::v1::Money& amount) {
    const int64_t minor = amount.amount_minor();
    return absl::StrFormat("%d.%02d %s", minor / 100, minor % 100,
                           amount.currency_code().empty() ? "EUR" : amount.currency_code());
  };
  std::cout << "\nThe demo's ledger (GetBalance of each):\n";
  for (const auto& [who, balance] : report->balances) {
    if (balance.has_expert()) {
      std::cout << absl::StrFormat("  %-13s expert   pending %s, available %s, paid out %s\n", who,
                                   money(balance.expert().pending()),
                                   money(balance.expert().available()),
                                   money(balance.expert().paid_out()));
    } else if (balance.has_sponsor()) {
      std::cout << absl::StrFormat("  %-13s sponsor  budget %s, reserved %s, spent %s\n", who,
                                   money(balance.sponsor().budget()),
                                   money(balance.sponsor().reserved()),
                                   money(balance.sponsor().spent()));
    } else {
      std::cout << absl::StrFormat("  %-13s person   spent %s, refunded %s\n", who,
                                   money(balance.person().spent()),
                                   money(balance.person().refunded()));
    }
  }
  const payments::v1::ReconcileResponse& ledger = report->reconcile;
  std::cout << "\nThe ledger (admin Reconcile):\n"
            << "  accounts sum to zero:             " << (ledger.accounts_sum_to_zero() ? "yes" : "NO")
            << "\n  balances equal their transfers:   "
            << (ledger.balances_match_replay() ? "yes" : "NO")
            << "\n  processor's journal = the ledger: "
            << (ledger.processor_matches_ledger() ? "yes" : "NO")
            << "\n  no account below its limit:       " << (ledger.flags_hold() ? "yes" : "NO")
            << "\n";
  for (const std::string& problem : ledger.problems()) std::cout << "  problem: " << problem << "\n";
  return ledger.problems().empty() ? 0 : 1;
}
