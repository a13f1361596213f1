#include "services/runtime/kafka/client.h"

#include "gtest/gtest.h"

namespace helpline::kafka {
namespace {

// The binaries link the librdkafka that tools/build-librdkafka built, not
// bookworm's 2.0.2 (installed as well, for kcat).
TEST(KafkaClientTest, LinksThePinnedLibrdkafka) {
  EXPECT_EQ(LibraryVersion(), HELPLINE_RDKAFKA_VERSION);
  EXPECT_NE(LibraryVersion().rfind("2.0.", 0), 0u);
}

}  // namespace
}  // namespace helpline::kafka
