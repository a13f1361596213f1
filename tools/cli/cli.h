#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"

// The pieces of the `helpline` command line: every RPC of the five services
// found by name through the compiled descriptors, requests built from
// flags, answers rendered for people or as JSON.
namespace helpline::cli {

// The five services, by their command names: "identity", "catalog",
// "matching", "sessions", "payments".
std::vector<std::string> ServiceNames();
const google::protobuf::ServiceDescriptor* FindService(const std::string& name);
// "search-experts" or "SearchExperts".
const google::protobuf::MethodDescriptor* FindMethod(const google::protobuf::ServiceDescriptor& service,
                                                     const std::string& name);
// "SearchExperts" -> "search-experts".
std::string CommandName(const std::string& camel_case);

// Flags as written ("--budget.max-per-minute", "2.00EUR"), without the "--".
using Flags = std::vector<std::pair<std::string, std::string>>;

// The request: `data` (JSON, may be empty) with the flags set on top; a
// flag names a field path in kebab or snake case, repeats for a repeated
// field; enums by full or short name ("available"); Money as "12.50EUR";
// a request_id left out is a new UUID. INVALID_ARGUMENT names a bad flag.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> BuildRequest(
    const google::protobuf::MethodDescriptor& method, const Flags& flags, const std::string& data);

// A message for people: one field a line, nested indented, money as
// "18.00 EUR", enums without their prefix.
std::string Human(const google::protobuf::Message& message);
std::string Json(const google::protobuf::Message& message);

// The fields a request takes, one a line, for --help.
std::string FieldsHelp(const google::protobuf::Descriptor& request);

// Calls `method` on `channel` with `token` (none when empty); a streaming
// method gives each answer to `on_answer` as it comes.
grpc::Status Invoke(const std::shared_ptr<grpc::Channel>& channel,
                    const google::protobuf::MethodDescriptor& method, const std::string& token,
                    const google::protobuf::Message& request,
                    const std::function<void(const google::protobuf::Message&)>& on_answer);

}  // namespace helpline::cli
