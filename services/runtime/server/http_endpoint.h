#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"

class CivetServer;

namespace helpline::server {

struct HttpRequest {
  std::string method;
  // Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string body;  // exactly as received

  std::string Header(const std::string& lower_case_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;  // text/plain
};

// One HTTP/1.1 path a service serves besides gRPC (a webhook): POST only,
// bodies up to `max_body_bytes` (413 above), every request logged when it is
// answered with an error. `check_headers` (optional) may refuse a request
// from its headers before its body is read (a sender that cannot sign
// holds no thread while it trickles a body in); a handler that throws is
// answered 500. Handlers run on the server's 16 threads.
class HttpEndpoint {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // nullopt: go on and read the body.
  using HeaderCheck = std::function<std::optional<HttpResponse>(const HttpRequest& headers)>;

  HttpEndpoint(std::string path, Handler handler, size_t max_body_bytes = 64 << 10,
               HeaderCheck check_headers = nullptr);
  ~HttpEndpoint();

  // Starts serving on "host:port" (port 0 picks a free one).
  absl::Status Serve(const std::string& listen_address);
  int port() const { return port_; }
  void Stop();

  class Dispatch;

 private:
  const std::string path_;
  const Handler handler_;
  const size_t max_body_bytes_;
  const HeaderCheck check_headers_;
  std::unique_ptr<Dispatch> dispatch_;
  std::unique_ptr<CivetServer> server_;
  int port_ = 0;
};

}  // namespace helpline::server
