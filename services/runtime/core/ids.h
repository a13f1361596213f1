#pragma once

#include <cstdint>
#include <string>
#include <string_view>

// Helpline's ids: UUIDv7 (time-ordered) for entities and events, UUIDv5
// (name-based, SHA-1) for ids that must come out the same every time, such as
// a command id from (caller, request_id). Both in the canonical 36-character
// lower-case form.
namespace helpline::ids {

// Random, with the current Unix milliseconds in the first 48 bits (RFC 9562).
std::string NewUuidV7();

// An event's id: a UUIDv7 with the decision's Unix milliseconds in the
// first 48 bits and the rest from SHA-1 of (writer, aggregate id, version),
// so deciding the same command again (a replay, a batch redone after an
// abort) names its events the same, and no two events share an id (the
// writer, the service, keeps aggregates of the same id in two services apart).
std::string EventUuidV7(int64_t unix_millis, std::string_view writer, std::string_view aggregate_id,
                        int64_t version);

// Deterministic: the same namespace and name give the same id.
std::string UuidV5(std::string_view namespace_uuid, std::string_view name);

// The namespace of every id Helpline derives.
inline constexpr std::string_view kHelplineNamespace = "6f1c8f1e-6a0b-4c5e-9a43-5b7c1d2e3f40";

// The command id of a client request: UUIDv5 of "<caller>\n<request_id>".
std::string CommandId(std::string_view caller, std::string_view request_id);

// The command id of a command derived from another record (a reactor's
// reaction to an event, a timer): UUIDv5 of "<source>\n<discriminator>".
std::string DerivedCommandId(std::string_view source_id, std::string_view discriminator);

// True for the canonical form of any UUID.
bool IsUuid(std::string_view text);

}  // namespace helpline::ids
