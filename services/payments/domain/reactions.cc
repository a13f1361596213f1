#include "services/payments/domain/reactions.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/payments/domain/payments_domain.h"

namespace helpline::payments {
namespace {

v1::PaymentsCommand ForLedger(const CommissionOptions& options) {
  v1::PaymentsCommand command;
  command.mutable_meta()->set_aggregate_id(LedgerId(options.currency));
  return command;
}

runtime::v1::Money MinimumCharge(const catalog::v1::PriceTerms& price) {
  if (price.has_fixed()) return price.fixed().price();
  runtime::v1::Money charge = price.per_minute().rate();
  charge.set_amount_minor(charge.amount_minor() * price.per_minute().minimum_minutes());
  return charge;
}

v1::PaymentsCommand Hold(const CommissionOptions& options, const std::string& session_id,
                         const std::string& person_id, const std::string& expert_id,
                         const runtime::v1::Money& max_amount,
                         const catalog::v1::PriceTerms& price, const std::string& category_id,
                         const std::string& program_id) {
  v1::PaymentsCommand command = ForLedger(options);
  v1::HoldSession& hold = *command.mutable_hold_session();
  hold.set_session_id(session_id);
  hold.set_person_id(person_id);
  hold.set_expert_id(expert_id);
  *hold.mutable_max_amount() = max_amount;
  hold.set_commission_bps(options.For(category_id, program_id));
  hold.set_sponsor_program_id(program_id);
  *hold.mutable_minimum_charge() = MinimumCharge(price);
  return command;
}

}  // namespace

int32_t CommissionOptions::For(const std::string& category_id,
                               const std::string& program_id) const {
  if (auto program = program_bps.find(program_id); !program_id.empty() && program != program_bps.end()) {
    return program->second;
  }
  if (auto category = category_bps.find(category_id); category != category_bps.end()) {
    return category->second;
  }
  return default_bps;
}

absl::Status ParseCommissionOverrides(absl::string_view text, CommissionOptions& options) {
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    std::pair<absl::string_view, absl::string_view> target_and_bps =
        absl::StrSplit(entry, absl::MaxSplits('=', 1));
    std::pair<absl::string_view, absl::string_view> kind_and_id =
        absl::StrSplit(target_and_bps.first, absl::MaxSplits(':', 1));
    int32_t bps = 0;
    if (!absl::SimpleAtoi(target_and_bps.second, &bps) || bps < 0 || bps > 10000 ||
        kind_and_id.second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", entry, "\" is not category:<id>=<bps> or program:<id>=<bps> with bps 0 to 10000"));
    }
    if (kind_and_id.first == "category") {
      options.category_bps[kind_and_id.second] = bps;
    } else if (kind_and_id.first == "program") {
      options.program_bps[kind_and_id.second] = bps;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", entry, "\" must start with category: or program:"));
    }
  }
  return absl::OkStatus();
}

std::vector<v1::PaymentsCommand> PaymentsFromMatching(const matching::v1::MatchingEvent& event,
                                                      const CommissionOptions& options) {
  switch (event.body_case()) {
    case matching::v1::MatchingEvent::kMatchMade: {
      const matching::v1::Match& match = event.match_made().match();
      return {Hold(options, match.match_id(), match.person_id(), match.expert_id(),
                   match.max_amount(), match.price(), match.category_id(),
                   match.sponsor_program_id())};
    }
    case matching::v1::MatchingEvent::kBookingConfirmed: {
      const matching::v1::Booking& booking = event.booking_confirmed().booking();
      return {Hold(options, booking.booking_id(), booking.person_id(), booking.expert_id(),
                   booking.max_amount(), booking.price(), "", booking.sponsor_program_id())};
    }
    case matching::v1::MatchingEvent::kBookingCancelled: {
      const matching::v1::BookingCancelled& cancelled = event.booking_cancelled();
      v1::PaymentsCommand command = ForLedger(options);
      if (cancelled.late()) {
        command.mutable_charge_late_cancellation()->set_session_id(cancelled.booking_id());
      } else {
        command.mutable_void_session()->set_session_id(cancelled.booking_id());
        command.mutable_void_session()->set_reason("the booking was cancelled in time");
      }
      return {command};
    }
    default:
      return {};
  }
}

std::vector<v1::PaymentsCommand> PaymentsFromSessions(const sessions::v1::SessionsEvent& event,
                                                      const CommissionOptions& options) {
  const std::string& session_id = event.meta().aggregate_id();
  v1::PaymentsCommand command = ForLedger(options);
  switch (event.body_case()) {
    case sessions::v1::SessionsEvent::kSessionEnded:
      command.mutable_capture_session()->set_session_id(session_id);
      *command.mutable_capture_session()->mutable_amount() =
          event.session_ended().billing().amount();
      return {command};
    case sessions::v1::SessionsEvent::kSessionNoShow:
      command.mutable_void_session()->set_session_id(session_id);
      command.mutable_void_session()->set_reason("no-show");
      return {command};
    case sessions::v1::SessionsEvent::kSessionCancelled:
      // A booked session is cancelled because its booking was (payments
      // voids it or charges the late fee from BookingCancelled, in whatever
      // order the two arrive) or its hold failed (nothing held): voiding it
      // here too could void the hold before a late fee is charged.
      if (event.session_cancelled().kind() == sessions::v1::SESSION_KIND_BOOKED) return {};
      command.mutable_void_session()->set_session_id(session_id);
      command.mutable_void_session()->set_reason(event.session_cancelled().reason());
      return {command};
    case sessions::v1::SessionsEvent::kRefundRequested:
      command.mutable_refund_session()->set_session_id(session_id);
      command.mutable_refund_session()->set_reason(event.refund_requested().reason());
      command.mutable_refund_session()->set_platform_absorbs_shortfall(
          options.platform_absorbs_refund_shortfall);
      return {command};
    default:
      return {};
  }
}

std::vector<v1::PaymentsCommand> PaymentsFromCatalog(const catalog::v1::CatalogEvent& event,
                                                     const CommissionOptions& options) {
  const catalog::v1::SponsorProgramTerms* terms = nullptr;
  std::string sponsor_id;
  if (event.has_sponsor_program_created()) {
    terms = &event.sponsor_program_created().terms();
    sponsor_id = event.sponsor_program_created().sponsor_id();
  } else if (event.has_sponsor_program_updated()) {
    terms = &event.sponsor_program_updated().terms();
  } else {
    return {};
  }
  v1::PaymentsCommand command = ForLedger(options);
  v1::RecordSponsorProgram& program = *command.mutable_record_sponsor_program();
  program.set_program_id(event.meta().aggregate_id());
  program.set_sponsor_id(sponsor_id);
  program.set_free_sessions_per_person(terms->free_sessions_per_person());
  return {command};
}

}  // namespace helpline::payments
