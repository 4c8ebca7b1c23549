// Tests for the WebSocket handshake helpers: RFC 6455 §1.3 accept key, client key shape,
// comma-separated header tokens.
#include "ws/handshake.hpp"

#include <gtest/gtest.h>

namespace mles::ws {
namespace {

TEST(handshake, accept_key_matches_rfc_vector) {
  // RFC 6455 §1.3
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(handshake, accept_key_of_other_keys) {
  // RFC 6455 §4.2.2 / Autobahn-style second vector (SHA-1 of key + GUID, base64).
  EXPECT_EQ(accept_key("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  EXPECT_EQ(accept_key("").size(), 28u);
}

TEST(handshake, accepts_base64_of_16_bytes) {
  EXPECT_TRUE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(is_valid_client_key("+/+/+/+/+/+/+/+/+/+/+w=="));
}

TEST(handshake, rejects_client_keys_of_other_shapes) {
  EXPECT_FALSE(is_valid_client_key(""));
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));    // 23 chars
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ==="));  // 25 chars
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQAA"));   // 18 bytes, no padding
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZ==="));   // 15 bytes + bad padding
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZ!=="));   // not base64
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25j Q=="));   // space
  EXPECT_FALSE(is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=A"));
}

TEST(handshake, finds_subprotocol_among_tokens) {
  EXPECT_TRUE(header_has_token("mles-websocket", mles_subprotocol, token_case::sensitive));
  EXPECT_TRUE(header_has_token("chat, mles-websocket", mles_subprotocol, token_case::sensitive));
  EXPECT_TRUE(header_has_token("mles-websocket,chat", mles_subprotocol, token_case::sensitive));
  EXPECT_TRUE(header_has_token(" \tmles-websocket\t , x", mles_subprotocol, token_case::sensitive));
  EXPECT_TRUE(header_has_token(",,mles-websocket,", mles_subprotocol, token_case::sensitive));
}

TEST(handshake, subprotocol_match_is_exact_and_case_sensitive) {
  EXPECT_FALSE(header_has_token("Mles-Websocket", mles_subprotocol, token_case::sensitive));
  EXPECT_FALSE(header_has_token("mles-websocket2", mles_subprotocol, token_case::sensitive));
  EXPECT_FALSE(header_has_token("xmles-websocket", mles_subprotocol, token_case::sensitive));
  EXPECT_FALSE(header_has_token("mles websocket", mles_subprotocol, token_case::sensitive));
  EXPECT_FALSE(header_has_token("mles-web socket", mles_subprotocol, token_case::sensitive));
  EXPECT_FALSE(header_has_token("", mles_subprotocol, token_case::sensitive));
  EXPECT_FALSE(header_has_token(" , ", mles_subprotocol, token_case::sensitive));
}

TEST(handshake, connection_tokens_match_case_insensitively) {
  EXPECT_TRUE(header_has_token("keep-alive, Upgrade", "upgrade", token_case::insensitive));
  EXPECT_TRUE(header_has_token("UPGRADE", "upgrade", token_case::insensitive));
  EXPECT_FALSE(header_has_token("keep-alive", "upgrade", token_case::insensitive));
  EXPECT_FALSE(header_has_token("upgraded", "upgrade", token_case::insensitive));
}

}  // namespace
}  // namespace mles::ws
