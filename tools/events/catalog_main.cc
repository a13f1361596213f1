// helpline-event-catalog: writes the event catalog (docs/events.md) from the
// proto files' comments and the topic declaration. Run by the build.
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.pb.h"
#include "nlohmann/json.hpp"
#include "tools/events/event_catalog.h"

namespace {

constexpr char kUsage[] = R"(Usage:
  helpline-event-catalog --descriptor-set FILE --topics FILE --output FILE [--require-documented]

Reads the protos as `protoc --include_imports --include_source_info
--descriptor_set_out=FILE` wrote them (comments included) and writes the
Markdown catalog of every helpline/<service>/v1/events.proto in it.
--require-documented fails (exit 1) listing the event types without a
comment and the numeric fields without one (their unit).
)";

}  // namespace

int main(int argc, char** argv) {
  std::string descriptor_set, topics_file, output;
  bool require_documented = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--require-documented") {
      require_documented = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << kUsage;
      return 2;
    }
    std::string value = argv[++i];
    if (arg == "--descriptor-set") descriptor_set = value;
    else if (arg == "--topics") topics_file = value;
    else if (arg == "--output") output = value;
    else {
      std::cerr << "unknown option " << arg << "\n" << kUsage;
      return 2;
    }
  }
  if (descriptor_set.empty() || topics_file.empty() || output.empty()) {
    std::cerr << kUsage;
    return 2;
  }

  google::protobuf::FileDescriptorSet set;
  std::ifstream set_in(descriptor_set, std::ios::binary);
  if (!set.ParseFromIstream(&set_in)) {
    std::cerr << descriptor_set << ": not a FileDescriptorSet\n";
    return 1;
  }
  google::protobuf::DescriptorPool pool;
  std::vector<const google::protobuf::FileDescriptor*> files;
  for (const google::protobuf::FileDescriptorProto& proto : set.file()) {
    const google::protobuf::FileDescriptor* file = pool.BuildFile(proto);
    if (file == nullptr) {
      std::cerr << descriptor_set << ": cannot build " << proto.name() << "\n";
      return 1;
    }
    files.push_back(file);
  }

  std::ifstream topics_in(topics_file);
  nlohmann::json topics = nlohmann::json::parse(topics_in, nullptr, false);
  if (topics.is_discarded()) {
    std::cerr << topics_file << ": not JSON\n";
    return 1;
  }
  if (require_documented) {
    std::vector<std::string> missing = helpline::events::UndocumentedInCatalog(files);
    if (!missing.empty()) {
      std::cerr << "helpline-event-catalog: add a comment (for a number: its unit) to:\n  "
                << absl::StrJoin(missing, "\n  ") << "\n";
      return 1;
    }
  }
  std::string catalog = helpline::events::RenderEventCatalog(files, topics);
  std::ofstream out(output, std::ios::trunc);
  out << catalog;
  if (!out.flush()) {
    std::cerr << "cannot write " << output << "\n";
    return 1;
  }
  return 0;
}
