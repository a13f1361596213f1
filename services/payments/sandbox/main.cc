// helpline-psp-sandbox: the sandbox payment processor as its own small
// process (gRPC, loopback), with its journal in a file of its own.
#include "absl/time/clock.h"
#include "helpline/payments/v1/processor.grpc.pb.h"
#include "services/payments/sandbox/sandbox.h"
#include "services/runtime/core/errors.h"
#include "services/runtime/server/log.h"
#include "services/runtime/server/server.h"

namespace helpline::payments {
namespace {

constexpr char kService[] = "psp-sandbox";

class SandboxService final : public v1::SandboxProcessorService::Service {
 public:
  explicit SandboxService(SandboxProcessor& processor) : processor_(processor) {}

  grpc::Status Execute(grpc::ServerContext*, const v1::ExecuteRequest* request,
                       v1::ExecuteResponse* response) override {
    absl::StatusOr<SandboxProcessor::Answer> answer = processor_.Execute(*request, absl::Now());
    if (!answer.ok()) return errors::ToGrpc(answer.status());
    if (answer->delay > absl::ZeroDuration()) absl::SleepFor(answer->delay);
    *response = answer->response;
    return grpc::Status::OK;
  }

  grpc::Status ListJournal(grpc::ServerContext*, const v1::ListJournalRequest* request,
                           v1::ListJournalResponse* response) override {
    absl::StatusOr<v1::ListJournalResponse> page =
        processor_.JournalPage(request->page_size(), request->page_token());
    if (!page.ok()) return errors::ToGrpc(page.status());
    *response = std::move(*page);
    return grpc::Status::OK;
  }

  grpc::Status Script(grpc::ServerContext*, const v1::ScriptRequest* request,
                      v1::ScriptResponse*) override {
    processor_.Script(*request);
    return grpc::Status::OK;
  }

 private:
  SandboxProcessor& processor_;
};

int Main(int argc, char** argv) {
  server::ShutdownSignal shutdown;
  server::ConfigSchema schema;
  server::AddServerKeys(schema);
  schema.String("sandbox.journal_file", "psp-sandbox-journal.jsonl",
                "where every operation is recorded (one JSON line each)");
  server::Config config = server::LoadConfigOrExit(schema, argc, argv);
  server::InitLogging(kService, config);
  absl::StatusOr<std::unique_ptr<SandboxProcessor>> processor =
      SandboxProcessor::Open(config.GetString("sandbox.journal_file"));
  if (!processor.ok()) {
    log::Error("cannot open the journal", {{"error", processor.status().ToString()}});
    return 1;
  }
  server::GrpcServer server(server::ServerOptionsFromConfig(kService, config));
  SandboxService service(**processor);
  server.AddService(&service);
  if (absl::Status started = server.Start(); !started.ok()) {
    log::Error("cannot start the gRPC server", {{"error", started.ToString()}});
    return 1;
  }
  server.ServeWhen([] { return true; });
  log::Info("serving", {{"entries", static_cast<int64_t>((*processor)->Journal().size())}});
  shutdown.Wait();
  server.Shutdown();
  return 0;
}

}  // namespace
}  // namespace helpline::payments

int main(int argc, char** argv) { return helpline::payments::Main(argc, argv); }
