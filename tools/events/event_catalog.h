#pragma once

#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "nlohmann/json.hpp"

namespace helpline::events {

// docs/events.md: every topic (from the topic declaration, deploy/topics.json)
// and every event type of every events topic with its fields, units and
// meaning, from the proto files' comments. `files` must carry their source
// info (parsed from .proto text, not compiled in).
std::string RenderEventCatalog(const std::vector<const google::protobuf::FileDescriptor*>& files,
                               const nlohmann::json& topics);

// Event types, and fields of the types events use, without a comment: what
// the catalog would leave unexplained ("helpline.sessions.v1.SessionEnded",
// "helpline.sessions.v1.SessionEnded.billed_minutes").
std::vector<std::string> UndocumentedInCatalog(
    const std::vector<const google::protobuf::FileDescriptor*>& files);

}  // namespace helpline::events
