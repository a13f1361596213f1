#include "tools/cli/cli.h"

#include <future>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "nlohmann/json.hpp"
#include "services/runtime/core/ids.h"
// Linked in for their descriptors.
#include "helpline/catalog/v1/catalog.grpc.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "helpline/matching/v1/matching.grpc.pb.h"
#include "helpline/payments/v1/payments.grpc.pb.h"
#include "helpline/sessions/v1/sessions.grpc.pb.h"

namespace helpline::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr char kMoney[] = "helpline.runtime.v1.Money";

std::string Snake(absl::string_view name) { return absl::StrReplaceAll(name, {{"-", "_"}}); }

// The JSON value of one flag for a scalar (or well-known) field.
absl::StatusOr<nlohmann::json> ScalarValue(const FieldDescriptor& field, const std::string& flag,
                                           const std::string& text) {
  auto bad = [&](absl::string_view expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": \"", text, "\" is not ", expected));
  };
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64: {
      int64_t value = 0;
      if (!absl::SimpleAtoi(text, &value)) return bad("a whole number");
      return nlohmann::json(value);
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double value = 0;
      if (!absl::SimpleAtod(text, &value)) return bad("a number");
      return nlohmann::json(value);
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool value = false;
      if (!absl::SimpleAtob(text, &value)) return bad("true or false");
      return nlohmann::json(value);
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const std::string upper = absl::AsciiStrToUpper(Snake(text));
      for (int i = 0; i < field.enum_type()->value_count(); ++i) {
        const std::string& name = field.enum_type()->value(i)->name();
        if (name == upper || absl::EndsWith(name, "_" + upper)) return nlohmann::json(name);
      }
      return bad(absl::StrCat("one of ", field.enum_type()->name(), "'s values"));
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      if (field.message_type()->full_name() == kMoney) {
        // "12.50EUR" or "12.50 EUR": two decimals of the major unit.
        std::string compact = absl::StrReplaceAll(text, {{" ", ""}});
        if (compact.size() < 4) return bad("an amount like 12.50EUR");
        const std::string currency = compact.substr(compact.size() - 3);
        double major = 0;
        if (!absl::SimpleAtod(compact.substr(0, compact.size() - 3), &major)) {
          return bad("an amount like 12.50EUR");
        }
        return nlohmann::json{{"currency_code", absl::AsciiStrToUpper(currency)},
                              {"amount_minor", static_cast<int64_t>(std::llround(major * 100))}};
      }
      // Timestamps, durations and the like take their JSON text form.
      return nlohmann::json(text);
    }
    default:
      return nlohmann::json(text);
  }
}

void RenderHuman(const nlohmann::json& value, const FieldDescriptor* field, int depth,
                 std::string& out);

std::string MoneyText(const nlohmann::json& money) {
  int64_t minor = 0;
  const nlohmann::json& amount = money.value("amount_minor", nlohmann::json(0));
  if (amount.is_string()) {
    absl::SimpleAtoi(amount.get<std::string>(), &minor);
  } else if (amount.is_number()) {
    minor = amount.get<int64_t>();
  }
  const int64_t magnitude = minor < 0 ? -minor : minor;
  return absl::StrCat(minor < 0 ? "-" : "", magnitude / 100, ".", magnitude % 100 < 10 ? "0" : "",
                      magnitude % 100, " ", money.value("currency_code", ""));
}

std::string ScalarText(const nlohmann::json& value, const FieldDescriptor* field) {
  if (field != nullptr && field->cpp_type() == FieldDescriptor::CPPTYPE_ENUM && value.is_string()) {
    // Without the enum's prefix: "HELP_REQUEST_STATUS_WAITING" -> "WAITING".
    std::string name = value.get<std::string>();
    std::string snake_prefix;
    for (char c : field->enum_type()->name()) {
      if (absl::ascii_isupper(c) && !snake_prefix.empty()) snake_prefix += '_';
      snake_prefix += absl::ascii_toupper(c);
    }
    if (absl::StartsWith(name, snake_prefix + "_")) name = name.substr(snake_prefix.size() + 1);
    return name;
  }
  return value.is_string() ? value.get<std::string>() : value.dump();
}

void RenderHuman(const nlohmann::json& value, const FieldDescriptor* field, int depth,
                 std::string& out) {
  const std::string indent(2 * depth, ' ');
  const Descriptor* type = field != nullptr && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE
                               ? field->message_type()
                               : nullptr;
  for (const auto& [key, item] : value.items()) {
    const FieldDescriptor* child = nullptr;
    if (type != nullptr) child = type->FindFieldByName(key);
    const bool money = child != nullptr && child->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
                       child->message_type()->full_name() == kMoney;
    auto one = [&](const nlohmann::json& element, const std::string& label) {
      if (money && element.is_object()) {
        out += absl::StrCat(indent, label, ": ", MoneyText(element), "\n");
      } else if (element.is_object()) {
        out += absl::StrCat(indent, label, ":\n");
        RenderHuman(element, child, depth + 1, out);
      } else {
        out += absl::StrCat(indent, label, ": ", ScalarText(element, child), "\n");
      }
    };
    if (item.is_array()) {
      for (size_t i = 0; i < item.size(); ++i) one(item[i], absl::StrCat(key, "[", i, "]"));
    } else {
      one(item, key);
    }
  }
}

std::string TypeName(const FieldDescriptor& field) {
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (field.message_type()->full_name() == kMoney) return "money, e.g. 12.50EUR";
    return field.message_type()->name();
  }
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_ENUM) return field.enum_type()->name();
  return field.type_name();
}

}  // namespace

std::vector<std::string> ServiceNames() {
  return {"identity", "catalog", "matching", "sessions", "payments"};
}

const google::protobuf::ServiceDescriptor* FindService(const std::string& name) {
  // Referenced so that the linker keeps every service's descriptors.
  static const bool linked = identity::v1::LoginRequest::descriptor() != nullptr &&
                             catalog::v1::SearchExpertsRequest::descriptor() != nullptr &&
                             matching::v1::RequestHelpRequest::descriptor() != nullptr &&
                             sessions::v1::JoinSessionRequest::descriptor() != nullptr &&
                             payments::v1::GetBalanceRequest::descriptor() != nullptr;
  (void)linked;
  std::string capitalised = name;
  if (!capitalised.empty()) capitalised[0] = absl::ascii_toupper(capitalised[0]);
  return google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      absl::StrCat("helpline.", name, ".v1.", capitalised, "Service"));
}

std::string CommandName(const std::string& camel_case) {
  std::string out;
  for (char c : camel_case) {
    if (absl::ascii_isupper(c) && !out.empty()) out += '-';
    out += absl::ascii_tolower(c);
  }
  return out;
}

const google::protobuf::MethodDescriptor* FindMethod(
    const google::protobuf::ServiceDescriptor& service, const std::string& name) {
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor* method = service.method(i);
    if (method->name() == name || CommandName(method->name()) == name) return method;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<Message>> BuildRequest(
    const google::protobuf::MethodDescriptor& method, const Flags& flags, const std::string& data) {
  nlohmann::json request = nlohmann::json::object();
  if (!data.empty()) {
    request = nlohmann::json::parse(data, nullptr, false);
    if (!request.is_object()) return absl::InvalidArgumentError("--data is not a JSON object");
  }
  for (const auto& [flag, text] : flags) {
    const Descriptor* type = method.input_type();
    nlohmann::json* at = &request;
    std::vector<std::string> path = absl::StrSplit(flag, '.');
    for (size_t i = 0; i < path.size(); ++i) {
      const FieldDescriptor* field = type->FindFieldByName(Snake(path[i]));
      if (field == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", flag, ": ", type->name(), " has no field ", Snake(path[i]),
            " (see --help)"));
      }
      const bool last = i + 1 == path.size();
      const bool plain_message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
                                 field->message_type()->full_name() != kMoney &&
                                 !absl::StartsWith(field->message_type()->full_name(),
                                                   "google.protobuf.");
      if (!last) {
        if (!plain_message || field->is_repeated()) {
          return absl::InvalidArgumentError(
              absl::StrCat("--", flag, ": ", field->name(), " has no fields to set this way"));
        }
        at = &(*at)[field->name()];
        type = field->message_type();
        continue;
      }
      if (plain_message) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", flag, ": ", field->name(), " is a message: set its fields (--", flag,
            ".<field>) or use --data"));
      }
      absl::StatusOr<nlohmann::json> value = ScalarValue(*field, flag, text);
      if (!value.ok()) return value.status();
      if (field->is_repeated()) {
        (*at)[field->name()].push_back(*value);
      } else {
        (*at)[field->name()] = *value;
      }
    }
  }
  if (method.input_type()->FindFieldByName("request_id") != nullptr &&
      !request.contains("request_id") && !request.contains("requestId")) {
    request["request_id"] = ids::NewUuidV7();
  }
  std::unique_ptr<Message> message(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(method.input_type())->New());
  auto parsed = google::protobuf::util::JsonStringToMessage(request.dump(), message.get());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("the request: ", parsed.ToString()));
  }
  return message;
}

std::string Json(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) out = "{}";
  return out;
}

std::string Human(const Message& message) {
  nlohmann::json value = nlohmann::json::parse(Json(message), nullptr, false);
  if (!value.is_object() || value.empty()) return "(nothing)\n";
  const Descriptor* type = message.GetDescriptor();
  std::string out;
  for (const auto& [key, item] : value.items()) {
    const FieldDescriptor* field = type->FindFieldByName(key);
    if (field != nullptr && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        field->message_type()->full_name() == kMoney && item.is_object()) {
      out += absl::StrCat(key, ": ", MoneyText(item), "\n");
    } else if (item.is_object() && field != nullptr &&
               field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      out += absl::StrCat(key, ":\n");
      RenderHuman(item, field, 1, out);
    } else if (item.is_array() && field != nullptr &&
               field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      for (size_t i = 0; i < item.size(); ++i) {
        out += absl::StrCat(key, "[", i, "]:\n");
        RenderHuman(item[i], field, 1, out);
      }
    } else if (item.is_array()) {
      for (size_t i = 0; i < item.size(); ++i) {
        out += absl::StrCat(key, "[", i, "]: ", ScalarText(item[i], field), "\n");
      }
    } else {
      out += absl::StrCat(key, ": ", ScalarText(item, field), "\n");
    }
  }
  return out;
}

std::string FieldsHelp(const Descriptor& request) {
  std::string out;
  for (int i = 0; i < request.field_count(); ++i) {
    const FieldDescriptor* field = request.field(i);
    out += absl::StrCat("  --", absl::StrReplaceAll(field->name(), {{"_", "-"}}), " <",
                        TypeName(*field), ">", field->is_repeated() ? " (repeat for more)" : "",
                        "\n");
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        field->message_type()->full_name() != kMoney &&
        !absl::StartsWith(field->message_type()->full_name(), "google.protobuf.") &&
        !field->is_repeated()) {
      for (int j = 0; j < field->message_type()->field_count(); ++j) {
        const FieldDescriptor* inner = field->message_type()->field(j);
        out += absl::StrCat("      --", absl::StrReplaceAll(field->name(), {{"_", "-"}}), ".",
                            absl::StrReplaceAll(inner->name(), {{"_", "-"}}), " <",
                            TypeName(*inner), ">", inner->is_repeated() ? " (repeat for more)" : "",
                            "\n");
      }
    }
  }
  return out.empty() ? "  (no fields)\n" : out;
}

grpc::Status Invoke(const std::shared_ptr<grpc::Channel>& channel,
                    const google::protobuf::MethodDescriptor& method, const std::string& token,
                    const Message& request,
                    const std::function<void(const Message&)>& on_answer) {
  const std::string path =
      absl::StrCat("/", method.service()->full_name(), "/", method.name());
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  const std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer sent(&slice, 1);
  std::unique_ptr<Message> answer(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(method.output_type())->New());
  auto deliver = [&](grpc::ByteBuffer& received) {
    std::vector<grpc::Slice> slices;
    received.Dump(&slices).IgnoreError();
    std::string raw;
    for (const grpc::Slice& part : slices) raw.append(reinterpret_cast<const char*>(part.begin()), part.size());
    answer->Clear();
    if (answer->ParseFromString(raw)) on_answer(*answer);
  };
  grpc::GenericStub stub(channel);
  if (!method.server_streaming()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    grpc::ByteBuffer received;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, path, grpc::StubOptions(), &sent, &received,
                   [&](grpc::Status status) { done.set_value(std::move(status)); });
    grpc::Status status = done.get_future().get();
    if (status.ok()) deliver(received);
    return status;
  }
  grpc::CompletionQueue queue;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&context, path, &queue);
  auto wait = [&](intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    return queue.Next(&got, &ok) && reinterpret_cast<intptr_t>(got) == tag && ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  bool open = wait(1);
  if (open) {
    call->Write(sent, reinterpret_cast<void*>(2));
    open = wait(2);
  }
  if (open) {
    call->WritesDone(reinterpret_cast<void*>(3));
    open = wait(3);
  }
  while (open) {
    grpc::ByteBuffer received;
    call->Read(&received, reinterpret_cast<void*>(4));
    if (!wait(4)) break;
    deliver(received);
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  wait(5);
  queue.Shutdown();
  void* ignored = nullptr;
  bool ok = false;
  while (queue.Next(&ignored, &ok)) {
  }
  return status;
}

}  // namespace helpline::cli
