// helpline: a command for every RPC of the five services, for frontend
// developers trying the APIs (`helpline --help`).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "helpline/identity/v1/identity.pb.h"
#include "helpline/matching/v1/matching.pb.h"
#include "nlohmann/json.hpp"
#include "services/runtime/auth/jwt.h"
#include "services/runtime/core/errors.h"
#include "tools/cli/cli.h"

namespace helpline::cli {
namespace {

constexpr char kUsage[] = R"(helpline: Helpline's APIs from the command line.

  helpline login EMAIL [--password P]   sign in (or HELPLINE_PASSWORD; else asked);
                                        the tokens are kept in ~/.config/helpline
  helpline logout                       sign out and forget the tokens
  helpline whoami                       who is signed in
  helpline expert online [--status S]   heartbeat as the signed-in expert until Ctrl-C
  helpline request help FLAGS           ask for help now (flags of matching
                                        request-help) and follow the line and offers live
  helpline SERVICE METHOD [FLAGS]       any RPC: FLAGS set request fields
                                        (--category-id bike-repair, --budget.max-per-minute 2.00EUR,
                                        --data '{"json": "..."}'); --json prints JSON
  helpline SERVICE --help               the service's methods
  helpline SERVICE METHOD --help        the method's fields

SERVICE: identity, catalog, matching, sessions, payments. The services are
found at 127.0.0.1:7001..7005 (HL_GRPC_PORT_BASE moves them; HL_TARGET_<SERVICE>,
e.g. HL_TARGET_CATALOG=host:port, sets one). Errors print the gRPC status and
its message, which names the field at fault; the exit status is 1 (2 for a
command line that is not understood).
)";

int Usage(const std::string& problem) {
  std::cerr << "helpline: " << problem << "\n(see helpline --help)\n";
  return 2;
}

std::string Target(const std::string& service) {
  std::string upper = service;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  if (const char* target = std::getenv(("HL_TARGET_" + upper).c_str())) return target;
  int base = 7000;
  if (const char* env = std::getenv("HL_GRPC_PORT_BASE")) base = std::atoi(env);
  std::vector<std::string> names = ServiceNames();
  int offset = static_cast<int>(std::find(names.begin(), names.end(), service) - names.begin()) + 1;
  return absl::StrCat("127.0.0.1:", base + offset);
}

std::shared_ptr<grpc::Channel> ChannelTo(const std::string& service) {
  return grpc::CreateChannel(Target(service), grpc::InsecureChannelCredentials());
}

// The signed-in user's tokens, in the per-user config folder.
class Credentials {
 public:
  Credentials() {
    if (const char* dir = std::getenv("HL_CLI_CONFIG_DIR")) {
      dir_ = dir;
    } else if (const char* xdg = std::getenv("XDG_CONFIG_HOME")) {
      dir_ = absl::StrCat(xdg, "/helpline");
    } else {
      dir_ = absl::StrCat(std::getenv("HOME") ? std::getenv("HOME") : ".", "/.config/helpline");
    }
    std::ifstream in(File());
    value_ = nlohmann::json::parse(in, nullptr, false);
    if (!value_.is_object()) value_ = nlohmann::json::object();
  }
  std::string Get(const std::string& key) const { return value_.value(key, ""); }
  void Set(const std::string& key, const std::string& value) { value_[key] = value; }
  // Sign-ins on this machine present the device token its account's last
  // sign-in here answered (kept across logouts).
  std::string DeviceToken(const std::string& email) const {
    const nlohmann::json& devices = value_.value("device_tokens", nlohmann::json::object());
    return devices.is_object() ? devices.value(absl::AsciiStrToLower(email), "") : "";
  }
  void SetDeviceToken(const std::string& email, const std::string& token) {
    if (!value_["device_tokens"].is_object()) value_["device_tokens"] = nlohmann::json::object();
    value_["device_tokens"][absl::AsciiStrToLower(email)] = token;
  }
  // Written owner-only from the first byte: a new file of its own (mkstemp
  // makes it 0600 and never follows a link) renamed over the old.
  bool Save() {
    std::error_code error;
    std::filesystem::create_directories(dir_, error);
    std::string temporary = File() + ".XXXXXX";
    int fd = mkostemp(temporary.data(), O_CLOEXEC);
    if (fd < 0) return false;
    const std::string text = value_.dump(2) + "\n";
    bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    written = close(fd) == 0 && written;
    if (written && std::rename(temporary.c_str(), File().c_str()) == 0) return true;
    std::remove(temporary.c_str());
    return false;
  }
  // Signing out: the tokens go, this machine's device tokens stay.
  void Forget() {
    nlohmann::json devices = value_.value("device_tokens", nlohmann::json::object());
    value_ = nlohmann::json::object();
    if (devices.is_object() && !devices.empty()) {
      value_["device_tokens"] = devices;
      if (Save()) return;
    }
    std::remove(File().c_str());
  }

 private:
  std::string File() const { return dir_ + "/credentials.json"; }
  std::string dir_;
  nlohmann::json value_;
};

void Keep(Credentials& credentials, const identity::v1::TokenPair& tokens) {
  credentials.Set("access_token", tokens.access_token());
  credentials.Set("refresh_token", tokens.refresh_token());
  if (!credentials.Save()) std::cerr << "warning: cannot save the credentials\n";
}

bool NeedsNoToken(const google::protobuf::MethodDescriptor& method) {
  static const std::vector<std::string> kOpen = {"Register", "Login", "Refresh", "GetJwks"};
  return method.service()->name() == "IdentityService" &&
         std::find(kOpen.begin(), kOpen.end(), method.name()) != kOpen.end();
}

int Fail(const grpc::Status& status) {
  absl::Status error = errors::FromGrpc(status);
  std::cerr << "error: " << absl::StatusCodeToString(error.code()) << ": " << error.message()
            << "\n";
  return 1;
}

// Calls with the kept access token; an expired one is refreshed once.
grpc::Status CallWithToken(Credentials& credentials, const std::string& service,
                           const google::protobuf::MethodDescriptor& method,
                           const google::protobuf::Message& request,
                           const std::function<void(const google::protobuf::Message&)>& on_answer) {
  const std::string token = NeedsNoToken(method) ? "" : credentials.Get("access_token");
  grpc::Status status = Invoke(ChannelTo(service), method, token, request, on_answer);
  if (status.error_code() != grpc::StatusCode::UNAUTHENTICATED || token.empty() ||
      credentials.Get("refresh_token").empty()) {
    return status;
  }
  identity::v1::RefreshRequest refresh;
  refresh.set_refresh_token(credentials.Get("refresh_token"));
  const google::protobuf::MethodDescriptor* refresh_method =
      FindMethod(*FindService("identity"), "Refresh");
  bool refreshed = false;
  grpc::Status renewed = Invoke(ChannelTo("identity"), *refresh_method, "", refresh,
                                [&](const google::protobuf::Message& answer) {
                                  identity::v1::RefreshResponse response;
                                  response.CopyFrom(answer);
                                  Keep(credentials, response.tokens());
                                  refreshed = true;
                                });
  if (!renewed.ok() || !refreshed) return status;
  return Invoke(ChannelTo(service), method, credentials.Get("access_token"), request, on_answer);
}

struct Parsed {
  std::vector<std::string> words;
  Flags flags;
  bool json = false;
  bool help = false;
  std::string data;
};

Parsed Parse(int argc, char** argv) {
  Parsed parsed;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--json") {
      parsed.json = true;
    } else if (arg == "--help" || arg == "-h") {
      parsed.help = true;
    } else if (absl::StartsWith(arg, "--")) {
      std::string name = arg.substr(2);
      std::string value;
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      }
      if (name == "data") {
        parsed.data = value;
      } else {
        parsed.flags.emplace_back(name, value);
      }
    } else {
      parsed.words.push_back(arg);
    }
  }
  return parsed;
}

void Print(const google::protobuf::Message& message, bool json) {
  std::cout << (json ? Json(message) + "\n" : Human(message)) << std::flush;
}

// Runs `service`'s `method` with the flags; prints each answer.
int Run(Credentials& credentials, const std::string& service, const std::string& method_name,
        const Parsed& parsed, const std::function<void(const google::protobuf::Message&)>& also = {}) {
  const google::protobuf::ServiceDescriptor* descriptor = FindService(service);
  if (descriptor == nullptr) return Usage(absl::StrCat("no service \"", service, "\""));
  const google::protobuf::MethodDescriptor* method = FindMethod(*descriptor, method_name);
  if (method == nullptr) {
    return Usage(absl::StrCat(service, " has no method \"", method_name, "\""));
  }
  if (parsed.help) {
    std::cout << "helpline " << service << " " << CommandName(method->name()) << " [FLAGS] [--json]"
              << (method->server_streaming() ? "   (streams answers until the server ends)" : "")
              << "\n\nFlags (fields of " << method->input_type()->full_name() << "):\n"
              << FieldsHelp(*method->input_type()) << "  --data '<JSON>'  the request as JSON (flags go on top)\n";
    return 0;
  }
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
      BuildRequest(*method, parsed.flags, parsed.data);
  if (!request.ok()) return Usage(std::string(request.status().message()));
  grpc::Status status = CallWithToken(credentials, service, *method, **request,
                                      [&](const google::protobuf::Message& answer) {
                                        Print(answer, parsed.json);
                                        if (also) also(answer);
                                      });
  return status.ok() ? 0 : Fail(status);
}

int Login(Credentials& credentials, const Parsed& parsed) {
  if (parsed.words.size() < 2) return Usage("login needs an email");
  std::string password;
  for (const auto& [name, value] : parsed.flags) {
    if (name == "password") password = value;
  }
  if (password.empty() && std::getenv("HELPLINE_PASSWORD") != nullptr) {
    password = std::getenv("HELPLINE_PASSWORD");
  }
  if (password.empty()) {
    std::cerr << "password: ";
    std::getline(std::cin, password);
  }
  identity::v1::LoginRequest request;
  request.set_email(parsed.words[1]);
  request.set_password(password);
  request.set_device_token(credentials.DeviceToken(request.email()));
  identity::v1::LoginResponse response;
  grpc::Status status = Invoke(ChannelTo("identity"), *FindMethod(*FindService("identity"), "Login"),
                               "", request, [&](const google::protobuf::Message& answer) {
                                 response.CopyFrom(answer);
                               });
  if (!status.ok()) return Fail(status);
  credentials.Forget();
  credentials.Set("email", request.email());
  credentials.Set("user_id", response.user_id());
  credentials.SetDeviceToken(request.email(), response.device_token());
  Keep(credentials, response.tokens());
  std::string roles;
  if (absl::StatusOr<auth::ParsedToken> token = auth::ParseToken(response.tokens().access_token());
      token.ok() && token->claims.contains("roles")) {
    roles = token->claims["roles"].dump();
  }
  std::cout << "signed in as " << request.email() << " (user " << response.user_id()
            << (roles.empty() ? "" : ", roles " + roles) << ")\n";
  return 0;
}

std::atomic<bool> interrupted{false};

int ExpertOnline(Credentials& credentials, const Parsed& parsed) {
  signal(SIGINT, [](int) { interrupted = true; });
  signal(SIGTERM, [](int) { interrupted = true; });
  std::string status = "available";
  for (const auto& [name, value] : parsed.flags) {
    if (name == "status") status = value;
  }
  const google::protobuf::MethodDescriptor* heartbeat =
      FindMethod(*FindService("matching"), "Heartbeat");
  // Offers as they come (the stream ends now and then: watch again).
  std::thread offers([&credentials, json = parsed.json] {
    const google::protobuf::MethodDescriptor* watch =
        FindMethod(*FindService("matching"), "WatchOffers");
    matching::v1::WatchOffersRequest request;
    while (!interrupted.load()) {
      CallWithToken(credentials, "matching", *watch, request, [json](const auto& answer) {
        const auto& update = static_cast<const matching::v1::WatchOffersResponse&>(answer);
        if (json) {
          std::cout << Json(update) << std::endl;
        } else if (update.has_offer()) {
          std::cout << "offer " << update.offer().offer_id() << ": accept with\n  helpline matching accept-offer --offer-id "
                    << update.offer().offer_id() << "\n  (or decline-offer)" << std::endl;
        } else {
          std::cout << "no open offer" << std::endl;
        }
      }).ok();
      absl::SleepFor(absl::Milliseconds(200));
    }
  });
  offers.detach();
  bool announced = false;
  while (!interrupted.load()) {
    absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
        BuildRequest(*heartbeat, {{"status", status}}, "");
    if (!request.ok()) return Usage(std::string(request.status().message()));
    grpc::Status sent =
        CallWithToken(credentials, "matching", *heartbeat, **request, [](const auto&) {});
    if (!sent.ok()) return Fail(sent);
    if (!announced) {
      std::cout << credentials.Get("email") << " is online (" << status
                << "); heartbeating every 2 s until Ctrl-C\n"
                << std::flush;
      announced = true;
    }
    for (int i = 0; i < 20 && !interrupted.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
  }
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> offline =
      BuildRequest(*heartbeat, {{"status", "offline"}}, "");
  if (offline.ok()) {
    CallWithToken(credentials, "matching", *heartbeat, **offline, [](const auto&) {}).ok();
  }
  std::cout << "offline\n";
  return 0;
}

// One line for a person following their request.
std::string Progress(const matching::v1::HelpRequest& request) {
  switch (request.status()) {
    case matching::v1::HELP_REQUEST_STATUS_WAITING:
      return absl::StrCat("waiting in line at position ", request.position());
    case matching::v1::HELP_REQUEST_STATUS_OFFERED:
      return absl::StrCat("offered to expert ", request.offer().expert_id(), ", waiting for the answer");
    case matching::v1::HELP_REQUEST_STATUS_MATCHED:
      return absl::StrCat("matched with expert ", request.match().expert_id(), ": session ",
                          request.match().match_id(), " (helpline sessions join-session --session-id ",
                          request.match().match_id(), ")");
    default:
      return Human(request);
  }
}

int RequestHelp(Credentials& credentials, const Parsed& parsed) {
  if (parsed.help) return Run(credentials, "matching", "RequestHelp", parsed);
  const google::protobuf::MethodDescriptor* ask = FindMethod(*FindService("matching"), "RequestHelp");
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
      BuildRequest(*ask, parsed.flags, parsed.data);
  if (!request.ok()) return Usage(std::string(request.status().message()));
  matching::v1::RequestHelpResponse asked;
  grpc::Status status = CallWithToken(credentials, "matching", *ask, **request,
                                      [&](const auto& answer) { asked.CopyFrom(answer); });
  if (!status.ok()) return Fail(status);
  if (parsed.json) {
    std::cout << Json(asked) << std::endl;
  } else {
    std::cout << "asked: request " << asked.help_request().help_request_id()
              << " (Ctrl-C stops following it)" << std::endl;
  }
  // Follow it live until it is matched, cancelled or expired.
  matching::v1::WatchRequestRequest watch;
  watch.set_help_request_id(asked.help_request().help_request_id());
  std::string last;
  status = CallWithToken(credentials, "matching", *FindMethod(*FindService("matching"), "WatchRequest"),
                         watch, [&](const auto& answer) {
                           const auto& update = static_cast<const matching::v1::WatchRequestResponse&>(answer);
                           std::string line = parsed.json ? Json(update) : Progress(update.help_request());
                           if (line != last) std::cout << line << std::endl;
                           last = line;
                         });
  return status.ok() ? 0 : Fail(status);
}

int Main(int argc, char** argv) {
  Parsed parsed = Parse(argc, argv);
  Credentials credentials;
  if (parsed.words.empty()) {
    std::cout << kUsage;
    return parsed.help ? 0 : 2;
  }
  const std::string& first = parsed.words[0];
  if (first == "login") return Login(credentials, parsed);
  if (first == "logout") {
    if (!credentials.Get("refresh_token").empty()) {
      Parsed logout;
      logout.flags = {{"refresh-token", credentials.Get("refresh_token")}};
      Run(credentials, "identity", "Logout", logout);
    }
    credentials.Forget();
    std::cout << "signed out\n";
    return 0;
  }
  if (first == "whoami") return Run(credentials, "identity", "GetMe", parsed);
  if (first == "expert" && parsed.words.size() > 1 && parsed.words[1] == "online") {
    return ExpertOnline(credentials, parsed);
  }
  if (first == "request" && parsed.words.size() > 1 && parsed.words[1] == "help") {
    return RequestHelp(credentials, parsed);
  }
  const google::protobuf::ServiceDescriptor* service = FindService(first);
  if (service == nullptr) return Usage(absl::StrCat("no command or service \"", first, "\""));
  if (parsed.words.size() < 2) {
    std::cout << "helpline " << first << " METHOD [FLAGS] [--json]   (METHOD --help: its fields)\n\n";
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = service->method(i);
      std::cout << "  " << CommandName(method->name())
                << (method->server_streaming() ? "   (streams)" : "") << "\n";
    }
    return parsed.help ? 0 : 2;
  }
  return Run(credentials, first, parsed.words[1], parsed);
}

}  // namespace
}  // namespace helpline::cli

int main(int argc, char** argv) { return helpline::cli::Main(argc, argv); }
