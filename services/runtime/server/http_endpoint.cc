#include "services/runtime/server/http_endpoint.h"

#include <CivetServer.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/runtime/server/log.h"

namespace helpline::server {
namespace {

void Answer(mg_connection* connection, const HttpResponse& response) {
  const char* reason = response.status < 300   ? "OK"
                       : response.status < 500 ? "Refused"
                                               : "Unavailable";
  mg_printf(connection,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            response.status, reason, response.body.size());
  mg_write(connection, response.body.data(), response.body.size());
}

}  // namespace

std::string HttpRequest::Header(const std::string& lower_case_name) const {
  auto found = headers.find(lower_case_name);
  return found == headers.end() ? "" : found->second;
}

class HttpEndpoint::Dispatch : public CivetHandler {
 public:
  explicit Dispatch(const HttpEndpoint& endpoint) : endpoint_(endpoint) {}

  bool handlePost(CivetServer*, mg_connection* connection) override {
    Answer(connection, Handle(connection));
    return true;
  }
  bool handleGet(CivetServer*, mg_connection* connection) override { return Refuse(connection); }
  bool handlePut(CivetServer*, mg_connection* connection) override { return Refuse(connection); }
  bool handleDelete(CivetServer*, mg_connection* connection) override {
    return Refuse(connection);
  }

 private:
  bool Refuse(mg_connection* connection) {
    Answer(connection, {405, "POST only\n"});
    return true;
  }

  HttpResponse Handle(mg_connection* connection) {
    const mg_request_info* info = mg_get_request_info(connection);
    HttpRequest request;
    request.method = info->request_method;
    for (int i = 0; i < info->num_headers; ++i) {
      std::string name = info->http_headers[i].name;
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      request.headers[name] = info->http_headers[i].value;
    }
    if (endpoint_.check_headers_) {
      std::optional<HttpResponse> refused = endpoint_.check_headers_(request);
      if (refused) return Logged(*refused);
    }
    if (info->content_length < 0) return {411, "a Content-Length is required\n"};
    if (static_cast<size_t>(info->content_length) > endpoint_.max_body_bytes_) {
      return {413, absl::StrCat("the body is over ", endpoint_.max_body_bytes_, " bytes\n")};
    }
    request.body.resize(static_cast<size_t>(info->content_length));
    size_t read = 0;
    while (read < request.body.size()) {
      int n = mg_read(connection, request.body.data() + read, request.body.size() - read);
      if (n <= 0) return {400, "the body ended early\n"};
      read += static_cast<size_t>(n);
    }
    try {
      return Logged(endpoint_.handler_(request));
    } catch (const std::exception& error) {
      return Logged({500, std::string("the request could not be handled: ") + error.what() + "\n"});
    }
  }

  HttpResponse Logged(HttpResponse response) {
    if (response.status >= 300) {
      log::Warn("http request refused", {{"path", endpoint_.path_},
                                         {"status", response.status},
                                         {"reason", response.body}});
    }
    return response;
  }

  const HttpEndpoint& endpoint_;
};

HttpEndpoint::HttpEndpoint(std::string path, Handler handler, size_t max_body_bytes,
                           HeaderCheck check_headers)
    : path_(std::move(path)),
      handler_(std::move(handler)),
      max_body_bytes_(max_body_bytes),
      check_headers_(std::move(check_headers)) {}

HttpEndpoint::~HttpEndpoint() { Stop(); }

absl::Status HttpEndpoint::Serve(const std::string& listen_address) {
  dispatch_ = std::make_unique<Dispatch>(*this);
  std::vector<std::string> options = {"listening_ports", listen_address, "num_threads", "16",
                                      "request_timeout_ms", "5000"};
  try {
    server_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException& error) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen_address, ": ", error.what()));
  }
  server_->addHandler(path_, dispatch_.get());
  std::vector<int> ports = server_->getListeningPorts();
  if (ports.empty()) return absl::UnavailableError("no listening port");
  port_ = ports[0];
  return absl::OkStatus();
}

void HttpEndpoint::Stop() {
  if (server_ != nullptr) {
    server_->close();
    server_.reset();
  }
}

}  // namespace helpline::server
