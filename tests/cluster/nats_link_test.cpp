// Proves the nats.c dependency (libnats-dev, found by pkg-config as PkgConfig::NATS): the
// header compiles under the project's warnings, the library links and reports version 3.x.
#include <nats/nats.h>

#include <gtest/gtest.h>

#include <string_view>

namespace {

TEST(nats_link, library_is_nats_c_3) {
  const char* version = nats_GetVersion();
  ASSERT_NE(version, nullptr);
  EXPECT_TRUE(std::string_view(version).starts_with("3.")) << version;
  // The header and the library agree (NATS_VERSION_* come from the header at compile time).
  EXPECT_TRUE(nats_CheckCompatibility());
  EXPECT_EQ(nats_GetVersionNumber() >> 16, 3u);
}

}  // namespace
