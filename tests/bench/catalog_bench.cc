// helpline-catalog-bench: catalog's figures and their floors, driven by
// tools/bench.
//
//   helpline-catalog-bench profiles --bootstrap-servers B --topic T --count N
//     writes the default category tree and N published profiles to catalog's
//     events topic T, as the processor would have: {"profiles", "seconds"}.
//   helpline-catalog-bench memory --count N
//     the same events applied to a read model in this process:
//     {"bytes_per_profile"} (heap in use after minus before).
//   helpline-catalog-bench search --target H:P --identity H:P --email E
//       --password P --threads K [--seconds S] [--via grpc|connect|grpc-web]
//     SearchExperts with a mix of realistic queries from K clients:
//     {"searches_per_sec", "p50_ms", "p99_ms", "failures", "hits_per_search"}.
//     --via connect or grpc-web: through the gateway at --target (its
//     http://host:port), each client on a kept-alive HTTP/1.1 connection as
//     a browser's would be.
//   helpline-catalog-bench search-local --count N [--seconds S]
//     the same query mix against a read model in this process:
//     {"micros_per_search": {kind: microseconds}}.
//   helpline-catalog-bench health --target H:P --threads K [--seconds S]
//     grpc.health.v1.Health/Check on the same server the same way:
//     {"checks_per_sec", "p50_ms", "p99_ms", "failures"}.
#include <curl/curl.h>
#include <malloc.h>

#include <atomic>
#include <memory>
#include <future>
#include <iostream>
#include <random>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "helpline/catalog/v1/catalog.pb.h"
#include "helpline/catalog/v1/commands.pb.h"
#include "helpline/catalog/v1/events.pb.h"
#include "helpline/identity/v1/identity.grpc.pb.h"
#include "services/catalog/domain/catalog_domain.h"
#include "services/catalog/domain/default_categories.h"
#include "services/catalog/domain/read_model.h"
#include "services/runtime/core/ids.h"
#include "services/runtime/core/proto_time.h"
#include "services/runtime/kafka/producer.h"
#include "tests/bench/closed_loop.h"

namespace {

using namespace helpline;  // NOLINT: a benchmark driver

struct Flags {
  std::string mode;
  std::string bootstrap_servers;
  std::string topic;
  std::string target;
  std::string identity;
  std::string email;
  std::string password;
  std::string via = "grpc";
  int count = 100000;
  int threads = 8;
  double seconds = 10;
};

int Fail(const std::string& message) {
  std::cerr << "helpline-catalog-bench: " << message << "\n";
  return 1;
}

// Words experts write, by leaf category; plus filler words and made-up names
// so the dictionary has the long tail real text has.
struct Vocabulary {
  std::vector<std::pair<std::string, std::vector<std::string>>> topics;  // category, words
  std::vector<std::string> common;
  std::vector<std::string> rare;

  Vocabulary() {
    const std::vector<std::string> words = {
        "bike", "gears", "tyre", "puncture", "brakes", "chain", "wheel", "frame", "ebike",
        "car", "engine", "oil", "battery", "tires", "paint", "garden", "roses", "lawn", "soil",
        "compost", "tomatoes", "plumbing", "tiles", "drill", "shelves", "bread", "sourdough",
        "cake", "pastry", "curry", "sushi", "pasta", "vegan", "tofu", "laptop", "windows",
        "linux", "printer", "wifi", "iphone", "android", "python", "javascript", "excel",
        "german", "grammar", "english", "spanish", "french", "conversation", "guitar", "chords",
        "piano", "scales", "singing", "voice", "yoga", "running", "marathon", "squats",
        "drawing", "watercolor", "knitting", "sewing", "makeup", "haircut", "maths", "algebra",
        "homework", "puppy", "training", "Fahrrad", "Reifen", "Kuchen", "Gemüse", "Gitarre"};
    helpline::catalog::v1::SeedCategories seed = helpline::catalog::DefaultCategories();
    size_t next = 0;
    for (const auto& category : seed.categories()) {
      if (category.parent_id().empty()) continue;
      std::vector<std::string> own;
      for (int k = 0; k < 5; ++k) own.push_back(words[(next++) % words.size()]);
      topics.emplace_back(category.category_id(), own);
    }
    common = {"help", "quick", "friendly", "beginner", "advanced", "repair", "learn", "tips",
              "lesson", "easy", "years", "experience", "teacher", "professional", "patient",
              "explain", "step", "questions", "online", "video", "home", "fix", "how", "show",
              "Hilfe", "erklären", "schnell", "freundlich", "Anfänger", "Erfahrung"};
    const char* syllables[] = {"ka", "ri", "to", "mu", "sel", "an", "dor", "vi", "lo", "ben",
                               "za", "qui", "ne", "ho", "ul", "tra"};
    std::mt19937 random(7);
    for (int i = 0; i < 20000; ++i) {
      std::string word;
      int parts = 2 + static_cast<int>(random() % 3);
      for (int p = 0; p < parts; ++p) word += syllables[random() % 16];
      rare.push_back(word);
    }
  }
};

// The i-th synthetic expert: a leaf category, its words, filler, a price.
catalog::v1::ProfileContent SyntheticProfile(int i, const Vocabulary& vocabulary) {
  std::mt19937 random(static_cast<uint32_t>(i));
  auto pick = [&](const std::vector<std::string>& words) -> const std::string& {
    // Zipf-like: early words much more often.
    double u = std::uniform_real_distribution<double>(0, 1)(random);
    return words[static_cast<size_t>(u * u * static_cast<double>(words.size()))];
  };
  const auto& [category, words] = vocabulary.topics[random() % vocabulary.topics.size()];
  catalog::v1::ProfileContent content;
  content.set_public_name(absl::StrCat(pick(vocabulary.rare), " ", pick(vocabulary.rare)));
  content.set_headline(absl::StrCat(pick(words), " ", pick(vocabulary.common), " ", pick(words),
                                    " ", pick(vocabulary.common)));
  std::string bio;
  for (int w = 0; w < 45; ++w) {
    const std::vector<std::string>& from =
        w % 5 == 0 ? words : (w % 3 == 0 ? vocabulary.rare : vocabulary.common);
    absl::StrAppend(&bio, w == 0 ? "" : " ", pick(from));
  }
  content.set_bio(bio);
  for (int s = 0; s < 4; ++s) {
    std::string skill = absl::StrCat(words[(i + s) % words.size()], s == 0 ? "" : absl::StrCat(" ", s));
    content.add_skills(skill);
  }
  content.add_category_ids(category);
  static const char* kLanguages[] = {"de", "en", "fr", "es", "it", "tr", "pl", "nl"};
  content.add_languages(kLanguages[random() % 3]);
  if (random() % 2 == 0) content.add_languages(kLanguages[3 + random() % 5]);
  if (random() % 4 == 0) {
    auto& fixed = *content.mutable_price()->mutable_fixed();
    fixed.mutable_price()->set_currency_code("EUR");
    fixed.mutable_price()->set_amount_minor(1000 + static_cast<int64_t>(random() % 9000));
    fixed.set_session_minutes(30);
  } else {
    auto& per_minute = *content.mutable_price()->mutable_per_minute();
    per_minute.mutable_rate()->set_currency_code("EUR");
    per_minute.mutable_rate()->set_amount_minor(50 + static_cast<int64_t>(random() % 350));
    per_minute.set_minimum_minutes(5);
  }
  auto& availability = *content.mutable_availability();
  availability.set_time_zone("Europe/Berlin");
  for (int day = 1; day <= 5; ++day) {
    auto& window = *availability.add_weekly();
    window.set_weekday(static_cast<catalog::v1::Weekday>(day));
    window.mutable_time()->set_start_minute(9 * 60);
    window.mutable_time()->set_end_minute(17 * 60);
  }
  return content;
}

// The events catalog's processor writes for the tree and for N experts who
// created, submitted, got approved and published their profiles.
void ForEachEvent(int count, const std::function<void(const catalog::v1::CatalogEvent&)>& emit) {
  Vocabulary vocabulary;
  auto stamp = [](catalog::v1::CatalogEvent& event, const std::string& id, int64_t version) {
    runtime::v1::EventMeta& meta = *event.mutable_meta();
    meta.set_event_id(ids::NewUuidV7());
    meta.set_aggregate_id(id);
    meta.set_aggregate_version(version);
    *meta.mutable_occurred_at() = ToProtoTime(absl::Now());
    meta.set_command_id(ids::NewUuidV7());
    meta.mutable_actor()->set_system("catalog.bench");
  };
  int64_t version = 0;
  const catalog::v1::SeedCategories tree = catalog::DefaultCategories();
  for (const auto& seed : tree.categories()) {
    catalog::v1::CatalogEvent event;
    event.mutable_category_created()->set_category_id(seed.category_id());
    event.mutable_category_created()->set_name(seed.name());
    event.mutable_category_created()->set_parent_id(seed.parent_id());
    stamp(event, catalog::kCategoryTreeId, ++version);
    emit(event);
  }
  for (int i = 0; i < count; ++i) {
    std::string id = ids::UuidV5(ids::kHelplineNamespace, absl::StrCat("bench-expert-", i));
    catalog::v1::ProfileContent content = SyntheticProfile(i, vocabulary);
    catalog::v1::CatalogEvent event;
    *event.mutable_profile_created()->mutable_draft() = content;
    stamp(event, id, 1);
    emit(event);
    event.Clear();
    *event.mutable_profile_submitted()->mutable_draft() = content;
    stamp(event, id, 2);
    emit(event);
    event.Clear();
    *event.mutable_expert_approved()->mutable_live() = content;
    stamp(event, id, 3);
    emit(event);
    event.Clear();
    event.mutable_profile_published();
    stamp(event, id, 4);
    emit(event);
  }
}

int WriteProfiles(const Flags& flags) {
  kafka::ClientConfig client;
  client.bootstrap_servers = flags.bootstrap_servers;
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = kafka::Producer::Create(client, {});
  if (!producer.ok()) return Fail(producer.status().ToString());
  absl::Time started = absl::Now();
  std::atomic<int64_t> failed{0};
  ForEachEvent(flags.count, [&](const catalog::v1::CatalogEvent& event) {
    kafka::OutgoingRecord record{flags.topic, std::nullopt, event.meta().aggregate_id(),
                                 event.SerializeAsString(), {}};
    // A full local queue drains while we wait.
    for (int attempt = 0; attempt < 10000; ++attempt) {
      absl::Status queued = (*producer)->Produce(record, [&](const kafka::Delivery& delivery) {
        if (!delivery.status.ok()) ++failed;
      });
      if (queued.ok()) return;
      absl::SleepFor(absl::Milliseconds(5));
    }
    ++failed;
  });
  if (absl::Status flushed = (*producer)->Flush(absl::Minutes(5)); !flushed.ok()) {
    return Fail(flushed.ToString());
  }
  if (failed.load() > 0) return Fail(absl::StrCat(failed.load(), " events not written"));
  std::cout << nlohmann::json{{"profiles", flags.count},
                              {"seconds", absl::ToDoubleSeconds(absl::Now() - started)}}
                   .dump()
            << std::endl;
  return 0;
}

int Memory(const Flags& flags) {
  std::vector<catalog::v1::CatalogEvent> events;
  ForEachEvent(flags.count, [&](const catalog::v1::CatalogEvent& event) {
    events.push_back(event);
  });
  malloc_trim(0);
  size_t before = mallinfo2().uordblks;
  auto read_model = std::make_unique<catalog::CatalogReadModel>();
  for (const catalog::v1::CatalogEvent& event : events) read_model->Apply(event);
  size_t after = mallinfo2().uordblks;
  std::cout << nlohmann::json{{"profiles", read_model->published()},
                              {"bytes_per_profile",
                               static_cast<double>(after - before) / flags.count}}
                   .dump()
            << std::endl;
  return 0;
}

// A unary call through the generic stub, the same way for every method, so
// the client's cost is the same for the measured RPC and the baseline.
bool GenericUnary(grpc::GenericStub& stub, const std::string& method, const std::string& request,
                  const std::string& token, std::string* response) {
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&](grpc::Status status) { done.set_value(std::move(status)); });
  grpc::Status status = done.get_future().get();
  if (!status.ok()) return false;
  if (response != nullptr) {
    std::vector<grpc::Slice> slices;
    if (!response_buffer.Dump(&slices).ok()) return false;
    response->clear();
    for (const grpc::Slice& part : slices) {
      response->append(reinterpret_cast<const char*>(part.begin()), part.size());
    }
  }
  return true;
}

// Queries people would type: a topic word, two words with the last one
// half-typed, a category with a language, a price ceiling sorted by price,
// the best rated of a category, and browsing everyone by rating.
std::vector<std::string> QueryMix() {
  Vocabulary vocabulary;
  std::vector<std::string> queries;
  std::mt19937 random(11);
  static const char* kLanguages[] = {"de", "en", "fr"};
  for (int i = 0; i < 600; ++i) {
    const auto& [category, words] = vocabulary.topics[random() % vocabulary.topics.size()];
    catalog::v1::SearchExpertsRequest request;
    request.set_page_size(20);
    switch (i % 6) {
      case 0:
        request.set_text(words[random() % words.size()]);
        break;
      case 1: {
        const std::string& last = words[random() % words.size()];
        request.set_text(absl::StrCat(vocabulary.common[random() % 8], " ",
                                      last.substr(0, std::max<size_t>(3, last.size() / 2))));
        break;
      }
      case 2:
        request.set_category_id(category);
        request.set_language(kLanguages[random() % 3]);
        break;
      case 3:
        request.set_category_id(category);
        request.mutable_max_price_per_minute()->set_currency_code("EUR");
        request.mutable_max_price_per_minute()->set_amount_minor(150);
        request.set_sort(catalog::v1::SEARCH_SORT_PRICE_LOW_TO_HIGH);
        break;
      case 4:
        request.set_text(words[random() % words.size()]);
        request.set_sort(catalog::v1::SEARCH_SORT_RATING);
        request.set_language(kLanguages[random() % 3]);
        break;
      default:
        request.set_sort(catalog::v1::SEARCH_SORT_RATING);
        break;
    }
    queries.push_back(request.SerializeAsString());
  }
  return queries;
}

absl::StatusOr<std::string> AccessToken(const Flags& flags) {
  auto stub = identity::v1::IdentityService::NewStub(
      grpc::CreateChannel(flags.identity, grpc::InsecureChannelCredentials()));
  identity::v1::LoginRequest request;
  request.set_email(flags.email);
  request.set_password(flags.password);
  identity::v1::LoginResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub->Login(&context, request, &response);
  if (!status.ok()) return absl::UnauthenticatedError(status.error_message());
  return response.tokens().access_token();
}

// The hits in a serialized SearchExpertsResponse, counted without building
// them: the client's own cost shares the 2 cores with the server it measures.
std::optional<int> CountHits(const std::string& bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  int hits = 0;
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    uint32_t length = 0;
    uint64_t ignored = 0;
    switch (tag & 7) {
      case 0:
        if (!in.ReadVarint64(&ignored)) return std::nullopt;
        break;
      case 1:
        if (!in.Skip(8)) return std::nullopt;
        break;
      case 2:
        if (!in.ReadVarint32(&length) || !in.Skip(static_cast<int>(length))) return std::nullopt;
        if (tag >> 3 == 1) ++hits;
        break;
      case 5:
        if (!in.Skip(4)) return std::nullopt;
        break;
      default:
        return std::nullopt;
    }
  }
  return hits;
}

size_t AppendToString(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One unary call through the gateway as a browser's client makes it: the
// Connect protocol (the message as the body) or gRPC-Web (the message and
// the status in length-prefixed frames).
class WebClient {
 public:
  WebClient(std::string url, std::string token, bool grpc_web)
      : url_(std::move(url)), grpc_web_(grpc_web), curl_(curl_easy_init()) {
    headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + token).c_str());
    headers_ = curl_slist_append(headers_, grpc_web ? "Content-Type: application/grpc-web+proto"
                                                    : "Content-Type: application/proto");
    headers_ = curl_slist_append(headers_,
                                 grpc_web ? "X-Grpc-Web: 1" : "Connect-Protocol-Version: 1");
    headers_ = curl_slist_append(headers_, "Expect:");
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, AppendToString);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &body_);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  }
  ~WebClient() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }

  bool Call(const std::string& path, const std::string& request, std::string* response) {
    std::string sent = request;
    if (grpc_web_) sent = Frame(0, request);
    body_.clear();
    const std::string url = url_ + path;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, sent.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(sent.size()));
    long status = 0;
    if (curl_easy_perform(curl_) != CURLE_OK) return false;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return false;
    if (!grpc_web_) {
      *response = body_;
      return true;
    }
    bool ok = false;
    for (size_t at = 0; at + 5 <= body_.size();) {
      uint32_t length = (uint8_t(body_[at + 1]) << 24) | (uint8_t(body_[at + 2]) << 16) |
                        (uint8_t(body_[at + 3]) << 8) | uint8_t(body_[at + 4]);
      if (at + 5 + length > body_.size()) return false;
      std::string payload = body_.substr(at + 5, length);
      if (body_[at] & 0x80) {
        ok = absl::StrContains(absl::AsciiStrToLower(payload), "grpc-status:0") ||
             absl::StrContains(absl::AsciiStrToLower(payload), "grpc-status: 0");
      } else {
        *response = std::move(payload);
      }
      at += 5 + length;
    }
    return ok;
  }

 private:
  static std::string Frame(char flags, const std::string& message) {
    std::string frame(5, '\0');
    frame[0] = flags;
    for (int i = 0; i < 4; ++i) frame[1 + i] = char((message.size() >> (24 - 8 * i)) & 0xff);
    return frame + message;
  }

  const std::string url_;
  const bool grpc_web_;
  CURL* curl_;
  curl_slist* headers_ = nullptr;
  std::string body_;
};

int Search(const Flags& flags) {
  absl::StatusOr<std::string> token = AccessToken(flags);
  if (!token.ok()) return Fail(token.status().ToString());
  if (flags.via != "grpc" && flags.via != "connect" && flags.via != "grpc-web") {
    return Fail("--via must be grpc, connect or grpc-web");
  }
  auto channel = grpc::CreateChannel(flags.target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::vector<std::unique_ptr<WebClient>> web_clients;
  for (int t = 0; flags.via != "grpc" && t < flags.threads; ++t) {
    web_clients.push_back(
        std::make_unique<WebClient>(flags.target, *token, flags.via == "grpc-web"));
  }
  std::vector<std::string> queries = QueryMix();
  std::atomic<int64_t> hits{0};
  std::atomic<int64_t> next{0};
  bench::LoadFigures figures =
      bench::ClosedLoop(flags.threads, absl::Seconds(flags.seconds), [&](int thread) {
        const std::string& query = queries[next.fetch_add(1) % queries.size()];
        const std::string method = "/helpline.catalog.v1.CatalogService/SearchExperts";
        std::string answer;
        bool ok = web_clients.empty() ? GenericUnary(stub, method, query, *token, &answer)
                                      : web_clients[thread]->Call(method, query, &answer);
        if (!ok) return false;
        std::optional<int> count = CountHits(answer);
        if (!count) return false;
        hits += *count;
        return true;
      });
  nlohmann::json out = figures.ToJson("searches_per_sec");
  double searches = figures.calls_per_sec * flags.seconds;
  out["hits_per_search"] = searches > 0 ? static_cast<double>(hits.load()) / searches : 0;
  std::cout << out.dump() << std::endl;
  return 0;
}

// The query mix against a read model in this process, by kind of query:
// what a search costs without gRPC and auth.
int SearchLocal(const Flags& flags) {
  catalog::CatalogReadModel read_model;
  ForEachEvent(flags.count, [&](const catalog::v1::CatalogEvent& event) {
    read_model.Apply(event);
  });
  std::vector<std::string> queries = QueryMix();
  std::vector<double> micros(6, 0);
  std::vector<int> counts(6, 0);
  absl::Time end = absl::Now() + absl::Seconds(flags.seconds);
  for (size_t i = 0; absl::Now() < end; ++i) {
    catalog::v1::SearchExpertsRequest request;
    request.ParseFromString(queries[i % queries.size()]);
    absl::Time begin = absl::Now();
    absl::StatusOr<catalog::v1::SearchExpertsResponse> response =
        read_model.Search(request, {"bench", absl::Now()});
    if (!response.ok()) return Fail(response.status().ToString());
    micros[i % queries.size() % 6] += absl::ToDoubleMicroseconds(absl::Now() - begin);
    counts[i % queries.size() % 6] += 1;
  }
  nlohmann::json out;
  const char* kinds[] = {"word", "word_prefix", "category_language", "category_price",
                         "word_rating_language", "browse_rating"};
  for (int k = 0; k < 6; ++k) out[kinds[k]] = counts[k] ? micros[k] / counts[k] : 0;
  std::cout << nlohmann::json{{"micros_per_search", out}}.dump() << std::endl;
  return 0;
}

int Health(const Flags& flags) {
  auto channel = grpc::CreateChannel(flags.target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  bench::LoadFigures figures =
      bench::ClosedLoop(flags.threads, absl::Seconds(flags.seconds), [&](int) {
        return GenericUnary(stub, "/grpc.health.v1.Health/Check", "", "", nullptr);
      });
  std::cout << figures.ToJson("checks_per_sec").dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Fail("usage: profiles|memory|search|health [flags]");
  Flags flags;
  flags.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    bool ok = true;
    if (flag == "--bootstrap-servers") flags.bootstrap_servers = value;
    else if (flag == "--topic") flags.topic = value;
    else if (flag == "--target") flags.target = value;
    else if (flag == "--identity") flags.identity = value;
    else if (flag == "--email") flags.email = value;
    else if (flag == "--password") flags.password = value;
    else if (flag == "--via") flags.via = value;
    else if (flag == "--count") ok = absl::SimpleAtoi(value, &flags.count);
    else if (flag == "--threads") ok = absl::SimpleAtoi(value, &flags.threads);
    else if (flag == "--seconds") ok = absl::SimpleAtod(value, &flags.seconds);
    else return Fail("unknown flag " + flag);
    if (!ok) return Fail("bad value for " + flag);
  }
  if (flags.mode == "profiles") return WriteProfiles(flags);
  if (flags.mode == "memory") return Memory(flags);
  if (flags.mode == "search") return Search(flags);
  if (flags.mode == "health") return Health(flags);
  if (flags.mode == "search-local") return SearchLocal(flags);
  return Fail("unknown mode " + flags.mode);
}
