#include "services/matching/matching_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/matching/domain/availability.h"
#include "services/matching/domain/matching_domain.h"
#include "services/matching/domain/pricing.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/language_tags.h"
#include "services/runtime/core/paging.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/core/text_checks.h"
#include "services/runtime/eventsourcing/front.h"
#include "services/runtime/server/log.h"

namespace helpline::matching {
namespace {

constexpr int kDefaultMinutes = 30;
constexpr int kMinMinutes = 5;
constexpr int kMaxMinutes = 240;
constexpr int kMaxDescription = 2000;

bool Over(v1::HelpRequestStatus status) {
  return status == v1::HELP_REQUEST_STATUS_MATCHED || status == v1::HELP_REQUEST_STATUS_CANCELLED ||
         status == v1::HELP_REQUEST_STATUS_EXPIRED;
}

absl::Status PresenceDown() {
  return absl::UnavailableError(
      "matching experts now needs presence, which is unavailable at the moment; try again "
      "shortly (booking a slot works meanwhile)");
}

}  // namespace

absl::Status SendPresenceCommand(es::Writer& front, v1::MatchingCommand command,
                                 const std::string& expert_id, int64_t sequence) {
  const std::string aggregate_id = PresenceId(expert_id);
  // One command per change Redis counted: a resend is the same command.
  return front.Send(command, es::CommandOrigin::ByHelpline(
                                 aggregate_id,
                                 ids::DerivedCommandId(aggregate_id, absl::StrCat("presence/", sequence)),
                                 "matching.presence"));
}

MatchingService::MatchingService(MatchingOptions options, MatchingParts parts)
    : options_(std::move(options)),
      parts_(parts),
      watch_slots_(options_.watch_streams_per_caller, options_.watch_streams) {}

absl::Status MatchingService::ReadRequest(const std::string& help_request_id,
                                          const auth::Principal& caller,
                                          v1::HelpRequest* out) const {
  std::optional<v1::HelpRequest> request =
      parts_.front.ReadOrCatchUp([&] { return parts_.read_model.Request(help_request_id); });
  if (!request) return absl::NotFoundError("no such help request");
  if (absl::Status visible = MayRead(*request, caller); !visible.ok()) return visible;
  *out = *std::move(request);
  return parts_.personal.OpenAll(*out, Deadline());
}

absl::Status MatchingService::MayRead(const v1::HelpRequest& request,
                                      const auth::Principal& caller) {
  if (request.person_id() != caller.user_id && !caller.HasRole("admin")) {
    return absl::PermissionDeniedError("only the person who asked can see a help request");
  }
  return absl::OkStatus();
}

absl::Status MatchingService::ReadBooking(const std::string& booking_id,
                                          const auth::Principal& caller, v1::Booking* out) const {
  std::optional<v1::Booking> booking =
      parts_.front.ReadOrCatchUp([&] { return parts_.read_model.Booking(booking_id); });
  if (!booking) return absl::NotFoundError("no such booking");
  if (booking->person_id() != caller.user_id && booking->expert_id() != caller.user_id &&
      !caller.HasRole("admin")) {
    return absl::PermissionDeniedError("only the booking's person and expert can see it");
  }
  *out = *std::move(booking);
  return parts_.personal.OpenAll(*out, Deadline());
}

absl::StatusOr<std::string> MatchingService::OfferedRequest(const std::string& offer_id,
                                                            const auth::Principal& caller) const {
  std::optional<std::string> request_id =
      parts_.front.ReadOrCatchUp([&] { return parts_.read_model.RequestOfOffer(offer_id); });
  if (!request_id) return absl::NotFoundError("no such offer");
  std::optional<v1::HelpRequest> request = parts_.read_model.Request(*request_id);
  if (request && request->offer().offer_id() == offer_id &&
      request->offer().expert_id() != caller.user_id) {
    return absl::PermissionDeniedError("only the expert the offer went to can answer it");
  }
  return *request_id;
}

void MatchingService::CheckBudget(const v1::Budget& budget, const std::string& field,
                                  errors::Validator& validator) const {
  const runtime::v1::Money* money = nullptr;
  std::string path;
  if (budget.has_max_per_minute()) {
    money = &budget.max_per_minute();
    path = absl::StrCat(field, ".max_per_minute");
  } else if (budget.has_max_total()) {
    money = &budget.max_total();
    path = absl::StrCat(field, ".max_total");
  } else {
    validator.Add(field, "set max_per_minute or max_total (or a sponsor program)");
    return;
  }
  validator.Check(money->currency_code() == options_.currency, path + ".currency_code",
                  absl::StrCat("must be ", options_.currency));
  validator.Check(money->amount_minor() > 0, path + ".amount_minor", "must be positive");
}

grpc::Status MatchingService::Heartbeat(grpc::ServerContext* context,
                                        const v1::HeartbeatRequest* request,
                                        v1::HeartbeatResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (!caller.HasRole("expert")) {
      return absl::PermissionDeniedError("only experts with an approved profile go online");
    }
    const v1::PresenceStatus status = request->status();
    if (status != v1::PRESENCE_STATUS_AVAILABLE && status != v1::PRESENCE_STATUS_BUSY &&
        status != v1::PRESENCE_STATUS_AWAY) {
      return errors::InvalidField(
          "status", "must be PRESENCE_STATUS_AVAILABLE, PRESENCE_STATUS_BUSY or PRESENCE_STATUS_AWAY");
    }
    // Presence lives on Redis's clock (the key's TTL), not the service clock.
    absl::Time now = absl::Now();
    absl::StatusOr<int64_t> changed = parts_.presence.Heartbeat(caller.user_id, status, now);
    if (!changed.ok()) {
      log::Warn("presence unavailable", {{"error", changed.status().ToString()}});
      return absl::UnavailableError("presence is unavailable right now; send the heartbeat again");
    }
    if (*changed > 0) {
      v1::MatchingCommand record;
      record.mutable_record_presence()->set_status(status);
      record.mutable_record_presence()->set_sequence(*changed);
      absl::Status sent = SendPresenceCommand(parts_.front, record, caller.user_id, *changed);
      if (!sent.ok()) {
        // Forget the change in Redis too, so the next heartbeat makes it again.
        parts_.presence.Forget(caller.user_id).IgnoreError();
        return absl::UnavailableError(absl::StrCat(
            "the presence change could not be recorded; send the heartbeat again (", sent.message(),
            ")"));
      }
    }
    *response->mutable_next_heartbeat_in() = ToProtoDuration(options_.heartbeat_interval);
    *response->mutable_online_until() = ToProtoTime(now + parts_.presence.ttl());
    return absl::OkStatus();
  });
}

grpc::Status MatchingService::RequestHelp(grpc::ServerContext* context,
                                          const v1::RequestHelpRequest* request,
                                          v1::RequestHelpResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    if (request->category_id().empty()) {
      validator.Add("category_id", "is required");
    } else {
      validator.Check(parts_.read_model.ActiveCategory(request->category_id()), "category_id",
                      "is not an active category");
    }
    std::optional<std::string> language = text::NormaliseLanguageTag(request->language());
    validator.Check(language.has_value(), "language",
                    "must be a BCP 47 language tag such as \"de\" or \"en-GB\"");
    text::CheckText(request->description(), 1, kMaxDescription, "description", validator, true);
    int minutes = request->max_minutes() == 0 ? kDefaultMinutes : request->max_minutes();
    validator.Check(minutes >= kMinMinutes && minutes <= kMaxMinutes, "max_minutes",
                    "must be 5 to 240 (0 means 30)");
    std::optional<SponsorProgramEntry> program;
    if (!request->sponsor_program_id().empty()) {
      program = parts_.read_model.Program(request->sponsor_program_id());
      validator.Check(program.has_value(), "sponsor_program_id", "is not a sponsor program");
    } else {
      CheckBudget(request->budget(), "budget", validator);
    }
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;
    if (program && !CandidatePool::InEffect(*program, parts_.clock.Now())) {
      return absl::FailedPreconditionError("the sponsor program is not in effect now");
    }
    if (!parts_.presence.Check().ok()) return PresenceDown();
    const std::string command_id =
        ids::CommandId(caller.user_id, absl::StrCat("request-help:", request->request_id()));
    const std::string help_request_id = ids::DerivedCommandId(command_id, "help-request");
    if (!parts_.read_model.Request(help_request_id) &&
        parts_.read_model.OpenRequestsOf(caller.user_id) >= options_.open_requests_per_person) {
      return absl::FailedPreconditionError(absl::StrCat(
          "you have ", options_.open_requests_per_person,
          " open help requests already; wait for them or cancel one"));
    }

    v1::MatchingCommand command;
    v1::OpenHelpRequest& open = *command.mutable_open_help_request();
    open.set_person_id(caller.user_id);
    open.set_category_id(request->category_id());
    open.set_language(*language);
    absl::StatusOr<std::string> description =
        parts_.personal.Seal(caller.user_id, request->description(), Deadline());
    if (!description.ok()) return description.status();
    open.set_description(*std::move(description));
    if (!program) *open.mutable_budget() = request->budget();
    open.set_max_minutes(minutes);
    open.set_sponsor_program_id(request->sponsor_program_id());
    *open.mutable_wait_limit() = ToProtoDuration(options_.request_wait_limit);
    if (absl::Status written =
            parts_.front.Write(command, es::CommandOrigin::ByUser(HelpRequestAggregate(help_request_id),
                                                                  command_id, caller.user_id));
        !written.ok()) {
      return written;
    }
    return ReadRequest(help_request_id, caller, response->mutable_help_request());
  });
}

grpc::Status MatchingService::GetRequest(grpc::ServerContext* context,
                                         const v1::GetRequestRequest* request,
                                         v1::GetRequestResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (request->help_request_id().empty()) {
      return errors::InvalidField("help_request_id", "is required");
    }
    return ReadRequest(request->help_request_id(), caller, response->mutable_help_request());
  });
}

grpc::Status MatchingService::CancelRequest(grpc::ServerContext* context,
                                            const v1::CancelRequestRequest* request,
                                            v1::CancelRequestResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    const std::string& id = request->help_request_id();
    if (id.empty()) return errors::InvalidField("help_request_id", "is required");
    if (absl::Status visible = ReadRequest(id, caller, response->mutable_help_request());
        !visible.ok()) {
      return visible;
    }
    v1::MatchingCommand command;
    command.mutable_cancel_help_request();
    if (absl::Status written = parts_.front.Write(
            command, es::CommandOrigin::ByUser(
                         HelpRequestAggregate(id),
                         ids::CommandId(caller.user_id, absl::StrCat("cancel:", id)), caller.user_id));
        !written.ok()) {
      return written;
    }
    return ReadRequest(id, caller, response->mutable_help_request());
  });
}

absl::Time MatchingService::Deadline() const { return absl::Now() + options_.command_timeout; }

absl::Time MatchingService::WatchOpenDeadline() {
  // The streams share one thread: a look waits for a key only briefly.
  return absl::Now() + absl::Milliseconds(200);
}

absl::Time MatchingService::WatchEnd(const auth::Principal& caller) const {
  const absl::Time now = absl::Now();
  // A token accepted within the verifier's leeway past its expiry still
  // gets a short stream, not one that ends at once.
  return std::min(now + options_.watch_lifetime, std::max(caller.expires_at, now + absl::Seconds(30)));
}

grpc::ServerWriteReactor<v1::WatchRequestResponse>* MatchingService::WatchRequest(
    grpc::CallbackServerContext* context, const v1::WatchRequestRequest* request) {
  using Stream = server::WatchStream<v1::WatchRequestResponse>;
  using View = server::WatchView<v1::WatchRequestResponse>;
  grpc::ServerWriteReactor<v1::WatchRequestResponse>* stream = nullptr;
  grpc::Status refused =
      parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
        const std::string id = request->help_request_id();
        if (id.empty()) return errors::InvalidField("help_request_id", "is required");
        absl::StatusOr<server::StreamSlots::Slot> slot = watch_slots_.Take(caller.user_id);
        if (!slot.ok()) return slot.status();
        // Nothing here waits (the streams share a few threads): a request
        // asked of another replica moments ago shows once this one has read
        // it, or the stream ends NOT_FOUND after the usual catch-up time.
        const absl::Time not_found_after = absl::Now() + es::kCatchUpWait;
        auto look = [this, id, caller, not_found_after]() -> absl::StatusOr<std::optional<View>> {
          std::optional<v1::HelpRequest> now = parts_.read_model.Request(id);
          if (!now.has_value()) {
            if (absl::Now() < not_found_after) return std::nullopt;
            return absl::NotFoundError("no such help request");
          }
          if (absl::Status visible = MayRead(*now, caller); !visible.ok()) return visible;
          View view;
          view.keys = {MatchingReadModel::RequestKey(id),
                       MatchingReadModel::LineKey(now->category_id())};
          view.last = Over(now->status());
          *view.message.mutable_help_request() = *std::move(now);
          // A key not read yet ends the stream UNAVAILABLE: the client
          // watches again, as after a restart.
          if (absl::Status opened = parts_.personal.OpenAll(view.message, WatchOpenDeadline());
              !opened.ok()) {
            return opened;
          }
          return view;
        };
        stream = Stream::Open(parts_.watches, {MatchingReadModel::RequestKey(id)},
                              WatchEnd(caller), std::move(look), *std::move(slot));
        return absl::OkStatus();
      });
  return stream != nullptr ? stream : Stream::Refused(refused);
}

grpc::ServerWriteReactor<v1::WatchOffersResponse>* MatchingService::WatchOffers(
    grpc::CallbackServerContext* context, const v1::WatchOffersRequest*) {
  using Stream = server::WatchStream<v1::WatchOffersResponse>;
  using View = server::WatchView<v1::WatchOffersResponse>;
  grpc::ServerWriteReactor<v1::WatchOffersResponse>* stream = nullptr;
  grpc::Status refused =
      parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
        if (!caller.HasRole("expert")) {
          return absl::PermissionDeniedError("only experts receive offers");
        }
        absl::StatusOr<server::StreamSlots::Slot> slot = watch_slots_.Take(caller.user_id);
        if (!slot.ok()) return slot.status();
        const std::string key = MatchingReadModel::OffersKey(caller.user_id);
        auto look = [this, key, expert_id = caller.user_id]() -> absl::StatusOr<std::optional<View>> {
          View view;
          view.keys = {key};
          if (std::optional<v1::Offer> offer = parts_.read_model.OpenOffer(expert_id)) {
            *view.message.mutable_offer() = *std::move(offer);
          }
          if (absl::Status opened = parts_.personal.OpenAll(view.message, WatchOpenDeadline());
              !opened.ok()) {
            return opened;
          }
          return view;
        };
        stream = Stream::Open(parts_.watches, {key}, WatchEnd(caller), std::move(look),
                              *std::move(slot));
        return absl::OkStatus();
      });
  return stream != nullptr ? stream : Stream::Refused(refused);
}

grpc::Status MatchingService::AcceptOffer(grpc::ServerContext* context,
                                          const v1::AcceptOfferRequest* request,
                                          v1::AcceptOfferResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    const std::string& offer_id = request->offer_id();
    if (offer_id.empty()) return errors::InvalidField("offer_id", "is required");
    absl::StatusOr<std::string> request_id = OfferedRequest(offer_id, caller);
    if (!request_id.ok()) return request_id.status();
    v1::MatchingCommand command;
    command.mutable_accept_offer()->set_offer_id(offer_id);
    if (absl::Status written =
            parts_.front.Write(command, es::CommandOrigin::ByUser(
                                            HelpRequestAggregate(*request_id),
                                            ids::CommandId(caller.user_id,
                                                           absl::StrCat("accept:", offer_id)),
                                            caller.user_id));
        !written.ok()) {
      return written;
    }
    std::optional<v1::HelpRequest> view = parts_.read_model.Request(*request_id);
    if (!view) return absl::InternalError("the match is not in the read model");
    if (parts_.metrics != nullptr && view->has_match() && view->has_created_at()) {
      parts_.metrics->ObserveTimeToMatch(FromProtoTime(view->match().matched_at()) -
                                         FromProtoTime(view->created_at()));
    }
    // The expert sees the match, not the person's budget.
    view->clear_budget();
    *response->mutable_help_request() = *std::move(view);
    return parts_.personal.OpenAll(*response, Deadline());
  });
}

grpc::Status MatchingService::DeclineOffer(grpc::ServerContext* context,
                                           const v1::DeclineOfferRequest* request,
                                           v1::DeclineOfferResponse*) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    const std::string& offer_id = request->offer_id();
    if (offer_id.empty()) return errors::InvalidField("offer_id", "is required");
    absl::StatusOr<std::string> request_id = OfferedRequest(offer_id, caller);
    if (!request_id.ok()) return request_id.status();
    v1::MatchingCommand command;
    command.mutable_decline_offer()->set_offer_id(offer_id);
    return parts_.front.Write(
        command, es::CommandOrigin::ByUser(
                     HelpRequestAggregate(*request_id),
                     ids::CommandId(caller.user_id, absl::StrCat("decline:", offer_id)),
                     caller.user_id));
  });
}

grpc::Status MatchingService::BookSlot(grpc::ServerContext* context,
                                       const v1::BookSlotRequest* request, v1::BookSlotResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    errors::Validator validator;
    text::CheckRequestId(request->request_id(), "request_id", validator);
    validator.Check(!request->expert_id().empty(), "expert_id", "is required");
    validator.Check(request->has_start(), "start", "is required");
    validator.Check(request->start().seconds() % 60 == 0 && request->start().nanos() == 0, "start",
                    "must be on a whole minute");
    validator.Check(request->minutes() >= 0, "minutes", "must not be negative");
    text::CheckText(request->note(), 0, kMaxDescription, "note", validator, true);
    if (absl::Status invalid = validator.Finish(); !invalid.ok()) return invalid;

    std::optional<ExpertEntry> expert = parts_.read_model.Expert(request->expert_id());
    if (!expert || !expert->published || !expert->has_live ||
        parts_.closed_accounts.IsClosed(expert->id)) {
      return absl::NotFoundError("no published expert with that id");
    }
    if (expert->id == caller.user_id) {
      return absl::FailedPreconditionError("an expert does not book their own time");
    }
    int minutes = request->minutes();
    if (expert->price.has_fixed()) {
      int session = expert->price.fixed().session_minutes();
      if (minutes != 0 && minutes != session) {
        return errors::InvalidField(
            "minutes", absl::StrCat("this expert sells sessions of ", session, " minutes: 0 or ",
                                    session));
      }
      minutes = session;
    } else {
      int minimum = expert->price.per_minute().minimum_minutes();
      if (minutes == 0) minutes = std::max(kDefaultMinutes, minimum);
      if (minutes < std::max(kMinMinutes, minimum) || minutes > kMaxMinutes) {
        return errors::InvalidField(
            "minutes", absl::StrCat("must be ", std::max(kMinMinutes, minimum), " to ", kMaxMinutes,
                                    " for this expert (0 means ", std::max(kDefaultMinutes, minimum),
                                    ")"));
      }
    }
    absl::Time now = parts_.clock.Now();
    absl::Time start = FromProtoTime(request->start());
    if (start > now + options_.booking_horizon) {
      return errors::InvalidField(
          "start", absl::StrCat("must be within ", absl::FormatDuration(options_.booking_horizon),
                                " from now"));
    }
    if (start < now + options_.booking_minimum_notice) {
      return absl::FailedPreconditionError(
          absl::StrCat("start: must be at least ",
                       absl::FormatDuration(options_.booking_minimum_notice), " from now"));
    }
    if (absl::Status inside = CheckInAvailability(expert->availability, start, minutes);
        !inside.ok()) {
      return inside;
    }
    int sponsor_cap = 0;
    if (!request->sponsor_program_id().empty()) {
      std::optional<SponsorProgramEntry> program =
          parts_.read_model.Program(request->sponsor_program_id());
      if (!program) return errors::InvalidField("sponsor_program_id", "is not a sponsor program");
      if (!CandidatePool::InEffect(*program, now)) {
        return absl::FailedPreconditionError("the sponsor program is not in effect now");
      }
      if (!parts_.read_model.Covers(*program, *expert)) {
        return absl::FailedPreconditionError("the sponsor program does not cover this expert");
      }
      sponsor_cap = program->terms.max_minutes_per_session();
      if (minutes > sponsor_cap) {
        return absl::FailedPreconditionError(absl::StrCat(
            "minutes: the sponsor program covers sessions of at most ", sponsor_cap, " minutes"));
      }
    }
    SessionTerms terms = TermsFor(expert->price, minutes, sponsor_cap);

    const std::string command_id =
        ids::CommandId(caller.user_id, absl::StrCat("book-slot:", request->request_id()));
    const std::string booking_id = ids::DerivedCommandId(command_id, "booking");
    v1::MatchingCommand command;
    v1::BookSlot& book = *command.mutable_book_slot();
    book.set_booking_id(booking_id);
    book.set_person_id(caller.user_id);
    *book.mutable_start() = request->start();
    book.set_minutes(terms.max_minutes);
    *book.mutable_price() = expert->price;
    *book.mutable_max_amount() = terms.max_amount;
    book.set_sponsor_program_id(request->sponsor_program_id());
    absl::StatusOr<std::string> note = parts_.personal.Seal(caller.user_id, request->note(), Deadline());
    if (!note.ok()) return note.status();
    book.set_note(*std::move(note));
    *book.mutable_minimum_notice() = ToProtoDuration(options_.booking_minimum_notice);
    book.set_max_open_per_person(options_.open_bookings_per_person_per_expert);
    if (absl::Status written = parts_.front.Write(
            command, es::CommandOrigin::ByUser(CalendarId(expert->id), command_id, caller.user_id));
        !written.ok()) {
      return written;
    }
    return ReadBooking(booking_id, caller, response->mutable_booking());
  });
}

grpc::Status MatchingService::CancelBooking(grpc::ServerContext* context,
                                            const v1::CancelBookingRequest* request,
                                            v1::CancelBookingResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    const std::string& id = request->booking_id();
    if (id.empty()) return errors::InvalidField("booking_id", "is required");
    v1::Booking booking;
    if (absl::Status visible = ReadBooking(id, caller, &booking); !visible.ok()) return visible;
    v1::MatchingCommand command;
    command.mutable_cancel_booking()->set_booking_id(id);
    *command.mutable_cancel_booking()->mutable_free_until_before() =
        ToProtoDuration(options_.free_cancellation_before);
    if (absl::Status written =
            parts_.front.Write(
                command, es::CommandOrigin::ByUser(
                             CalendarId(booking.expert_id()),
                             ids::CommandId(caller.user_id, absl::StrCat("cancel-booking:", id)),
                             caller.user_id));
        !written.ok()) {
      return written;
    }
    return ReadBooking(id, caller, response->mutable_booking());
  });
}

grpc::Status MatchingService::GetBooking(grpc::ServerContext* context,
                                         const v1::GetBookingRequest* request,
                                         v1::GetBookingResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    if (request->booking_id().empty()) return errors::InvalidField("booking_id", "is required");
    return ReadBooking(request->booking_id(), caller, response->mutable_booking());
  });
}

grpc::Status MatchingService::ListMyBookings(grpc::ServerContext* context,
                                             const v1::ListMyBookingsRequest* request,
                                             v1::ListMyBookingsResponse* response) {
  return parts_.guard.Authenticated(context, [&](const auth::Principal& caller) -> absl::Status {
    absl::StatusOr<int> page_size = paging::PageSize(request->page_size());
    if (!page_size.ok()) return page_size.status();
    // The token: the last booking of the previous page (its start and id).
    absl::StatusOr<std::optional<paging::TimeKey>> after =
        paging::DecodeTimeKey(request->page_token());
    if (!after.ok()) return after.status();
    for (v1::Booking& booking : parts_.read_model.BookingsOf(
             caller.user_id, parts_.clock.Now(), request->include_past_and_cancelled())) {
      std::pair<absl::Time, std::string> key{FromProtoTime(booking.start()), booking.booking_id()};
      if (*after && key <= **after) continue;
      if (response->bookings_size() == *page_size) {
        const v1::Booking& last = response->bookings(*page_size - 1);
        response->set_next_page_token(
            paging::EncodeTimeKey({FromProtoTime(last.start()), last.booking_id()}));
        break;
      }
      *response->add_bookings() = std::move(booking);
    }
    return parts_.personal.OpenAll(*response, Deadline());
  });
}

}  // namespace helpline::matching
