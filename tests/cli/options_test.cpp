// Tests for the command line: reference flags, our flags, defaults, usage errors.
#include "cli/options.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

using mles::cli::parse_command_line;
using mles::cli::parse_outcome;

namespace {

parse_outcome run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "mles");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data(), [env](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

}  // namespace

TEST(options, reference_flags_and_defaults) {
  auto r = run({"--domains", "Example.IO.", "-d", "b.io", "-w", "/srv/www", "--no-tls"});
  ASSERT_TRUE(r.config) << r.output;
  const auto& c = *r.config;
  EXPECT_THAT(c.domains, testing::ElementsAre("example.io", "b.io"));
  EXPECT_EQ(c.wwwroot, "/srv/www");
  EXPECT_EQ(c.history_limit, 200u);
  EXPECT_EQ(c.file_limit, 256u);
  EXPECT_EQ(c.port, 443);
  EXPECT_EQ(c.compression_cache_mb, 24u);
  EXPECT_FALSE(c.rate_limit);
  EXPECT_EQ(c.bind, "::");
  EXPECT_EQ(c.max_message, 16u << 20);
  EXPECT_EQ(c.max_queue, 4u << 20);
  EXPECT_EQ(c.tls, mles::app::tls_mode::none);
  EXPECT_EQ(c.log_level, "warn");
}

TEST(options, short_flags_match_the_reference) {
  auto r = run({"-d", "a.io", "-e", "me@a.io", "-c", "/var/cache/mles", "-l", "7", "-f", "9", "-w", "/w", "-s",
                "-p", "8443", "-r", "-C", "0", "-P", "api/keeper=http://127.0.0.1:9000", "--self-signed"});
  ASSERT_TRUE(r.config) << r.output;
  const auto& c = *r.config;
  EXPECT_EQ(c.history_limit, 7u);
  EXPECT_EQ(c.file_limit, 9u);
  EXPECT_TRUE(c.staging);
  EXPECT_TRUE(c.redirect);
  EXPECT_EQ(c.port, 8443);
  EXPECT_EQ(c.compression_cache_mb, 0u);
  ASSERT_EQ(c.proxies.size(), 1u);
  EXPECT_EQ(c.proxies[0].prefix, "api/keeper");
  EXPECT_EQ(c.proxies[0].upstream, "http://127.0.0.1:9000");
  EXPECT_EQ(c.tls, mles::app::tls_mode::self_signed);
  EXPECT_THAT(r.config->emails, testing::ElementsAre("me@a.io"));
  EXPECT_EQ(r.config->cache, std::filesystem::path("/var/cache/mles"));
}

TEST(options, usage_errors_exit_2_with_one_line) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-w", "/w", "--no-tls"},                                  // no --domains
           {"-d", "a", "--no-tls"},                                   // no --wwwroot
           {"-d", "a", "-w", "/w", "--no-tls", "--limit", "0"},
           {"-d", "a", "-w", "/w", "--no-tls", "--limit", "1000000"},
           {"-d", "a", "-w", "/w", "--no-tls", "--limit", "abc"},
           {"-d", "a", "-w", "/w", "--no-tls", "--port", "70000"},
           {"-d", "a", "-w", "/w", "--no-tls", "--bogus"},
           {"-d", "a", "-w", "/w", "--tls-cert", "c.pem"},             // key missing
           {"-d", "a", "-w", "/w", "--self-signed", "--no-tls"},
           {"-d", "a", "-w", "/w", "--no-tls", "--log-level", "loud"},
           {"-d", "a", "-w", "/w", "--no-tls", "-P", "nourl"},
           {"-d", "a", "-w", "/w", "--acme-challenge", "http-01"},   // http-01 needs --redirect
           {"-d", "a", "-w", "/w", "--acme-challenge", "dns-01"},
           {"-d", "a", "-w", "/w", "--acme-retry", "0"},
           {"-d", "a", "-w", "/w", "--no-tls", "--peer", "http://b.example"},
           {"-d", "a", "-w", "/w", "--no-tls", "--peer", "wss://b.example:0"},
           {"-d", "a", "-w", "/w", "--no-tls", "--peer", "b.example"},
           {"-d", "a", "-w", "/w", "--no-tls", "--server-id", "has space"},
           {"-d", "a", "-w", "/w", "--no-tls", "--server-id", std::string(65, 'x')},
           {"-d", "a", "-w", "/w", "--no-tls", "--peer-linger", "0"},
           {"-d", "a", "-w", "/w", "--no-tls", "--peer-retry-max", "0.5"},
           {"-d", "a", "-w", "/w", "--no-tls", "--peer-dedup-window", "1"},
           {"-d", "a", "-w", "/w", "--no-tls", "--history-sync", "-1"},
           {"-d", "a", "-w", "/w", "--no-tls", "--history-sync", "soon"},
       }) {
    auto r = run(args);
    EXPECT_FALSE(r.config) << testing::PrintToString(args);
    EXPECT_EQ(r.exit_code, 2) << testing::PrintToString(args);
    EXPECT_THAT(r.output, testing::HasSubstr("--help")) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

TEST(options, certificates_come_from_acme_unless_told_otherwise) {
  auto r = run({"-d", "a.io", "-w", "/w", "--acme-directory", "https://127.0.0.1:14000/dir", "--acme-ca-cert",
                "/tmp/ca.pem"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->tls, mles::app::tls_mode::acme);
  EXPECT_EQ(r.config->acme_directory, "https://127.0.0.1:14000/dir");
  EXPECT_EQ(r.config->acme_ca_cert, std::filesystem::path("/tmp/ca.pem"));
  auto plain = run({"-d", "a.io", "-w", "/w"});
  ASSERT_TRUE(plain.config);
  EXPECT_EQ(plain.config->tls, mles::app::tls_mode::acme);
  EXPECT_TRUE(plain.config->acme_directory.empty());  // Let's Encrypt production
}

TEST(options, help_and_version_exit_0) {
  auto h = run({"--help"});
  EXPECT_FALSE(h.config);
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_THAT(h.output, testing::HasSubstr("--domains"));
  EXPECT_THAT(h.output, testing::HasSubstr("--rate-limit"));
  auto v = run({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_THAT(v.output, testing::StartsWith("mles "));
}

TEST(options, sizes_accept_units) {
  auto r = run({"-d", "a", "-w", "/w", "--no-tls", "--max-message", "1MiB", "--max-queue", "256KiB",
                "--history-bytes", "2048"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->max_message, 1u << 20);
  EXPECT_EQ(r.config->max_queue, 256u << 10);
  EXPECT_EQ(r.config->history_bytes, 2048u);
}

TEST(options, memory_bounds_have_defaults_and_take_units) {
  auto d = run({"-d", "a", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(d.config) << d.output;
  EXPECT_FALSE(d.config->history_total);  // the server derives it from the machine's memory
  EXPECT_FALSE(d.config->max_inflight);
  EXPECT_EQ(d.config->max_channels, 100'000u);
  EXPECT_EQ(d.config->message_timeout, std::chrono::seconds(60));
  auto r = run({"-d", "a", "-w", "/w", "--no-tls", "--history-total", "512MiB", "--max-channels", "5000",
                "--max-inflight", "64MiB", "--message-timeout", "2.5"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->history_total, std::size_t{512} << 20);
  EXPECT_EQ(r.config->max_channels, 5000u);
  EXPECT_EQ(r.config->max_inflight, std::size_t{64} << 20);
  EXPECT_EQ(r.config->message_timeout, std::chrono::milliseconds(2500));
}

TEST(options, memory_bounds_refuse_what_cannot_work) {
  // One message alone must fit in the in-flight budget.
  auto small = run({"-d", "a", "-w", "/w", "--no-tls", "--max-message", "16MiB", "--max-inflight", "8MiB"});
  EXPECT_EQ(small.exit_code, 2);
  EXPECT_THAT(small.output, testing::HasSubstr("--max-inflight must be at least --max-message"));
  EXPECT_EQ(run({"-d", "a", "-w", "/w", "--no-tls", "--max-channels", "0"}).exit_code, 2);
  EXPECT_EQ(run({"-d", "a", "-w", "/w", "--no-tls", "--history-total", "1KiB"}).exit_code, 2);
  EXPECT_EQ(run({"-d", "a", "-w", "/w", "--no-tls", "--message-timeout", "0"}).exit_code, 2);
  EXPECT_EQ(run({"-d", "a", "-w", "/w", "--no-tls", "--history-total", "lots"}).exit_code, 2);
}

TEST(options, log_level_from_flag_then_mles_log_then_rust_log) {
  auto base = std::vector<std::string>{"-d", "a", "-w", "/w", "--no-tls"};
  EXPECT_EQ(run(base, {{"RUST_LOG", "debug"}}).config->log_level, "debug");
  EXPECT_EQ(run(base, {{"RUST_LOG", "debug"}, {"MLES_LOG", "error"}}).config->log_level, "error");
  auto with_flag = base;
  with_flag.insert(with_flag.end(), {"--log-level", "info"});
  EXPECT_EQ(run(with_flag, {{"MLES_LOG", "error"}}).config->log_level, "info");
}

TEST(options, mles_key_comes_from_the_environment) {
  auto base = std::vector<std::string>{"-d", "a", "-w", "/w", "--no-tls"};
  EXPECT_FALSE(run(base).config->mles_key);
  EXPECT_EQ(run(base, {{"MLES_KEY", "s3cret"}}).config->mles_key, "s3cret");
}

TEST(options, peer_links) {
  auto none = run({"-d", "a.io", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(none.config) << none.output;
  EXPECT_TRUE(none.config->peers.empty());
  EXPECT_TRUE(none.config->server_id.empty());  // derived at start from the domain and port
  EXPECT_TRUE(none.config->peer_mode);
  EXPECT_EQ(none.config->peer_linger, std::chrono::seconds(60));
  EXPECT_EQ(none.config->peer_retry_max, std::chrono::seconds(60));
  EXPECT_EQ(none.config->dedup_hashes, 1024u);

  auto r = run({"-d", "a.io", "-w", "/w", "--no-tls", "--peer", "wss://b.io", "--peer", "ws://127.0.0.1:8080",
                "--server-id", "a.io:443", "--peer-ca", "/etc/ca.pem", "--no-peer-mode", "--peer-linger", "2.5",
                "--peer-retry-max", "10", "--peer-dedup-window", "4096"});
  ASSERT_TRUE(r.config) << r.output;
  const auto& c = *r.config;
  EXPECT_THAT(c.peers, testing::ElementsAre("wss://b.io", "ws://127.0.0.1:8080"));
  EXPECT_EQ(c.server_id, "a.io:443");
  EXPECT_EQ(c.peer_ca, std::filesystem::path("/etc/ca.pem"));
  EXPECT_FALSE(c.peer_mode);
  EXPECT_EQ(c.peer_linger, std::chrono::milliseconds(2500));
  EXPECT_EQ(c.peer_retry_max, std::chrono::seconds(10));
  EXPECT_EQ(c.dedup_hashes, 4096u);
}

TEST(options, durable_history) {
  auto none = run({"-d", "a.io", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(none.config) << none.output;
  EXPECT_FALSE(none.config->history_dir);
  EXPECT_EQ(none.config->history_sync, std::chrono::seconds(1));
  auto r = run({"-d", "a.io", "-w", "/w", "--no-tls", "--history-dir", "/var/lib/mles", "--history-sync", "0"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->history_dir, std::filesystem::path("/var/lib/mles"));
  EXPECT_EQ(r.config->history_sync, std::chrono::milliseconds(0));
  auto half = run({"-d", "a.io", "-w", "/w", "--no-tls", "--history-dir", "h", "--history-sync", "0.25"});
  ASSERT_TRUE(half.config) << half.output;
  EXPECT_EQ(half.config->history_sync, std::chrono::milliseconds(250));
}

TEST(options, connection_caps) {
  auto d = run({"-d", "a.io", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(d.config) << d.output;
  EXPECT_EQ(d.config->max_connections, 0u);  // computed from the open-file limit at start
  EXPECT_EQ(d.config->max_handshakes, 1024u);
  auto r = run({"-d", "a.io", "-w", "/w", "--no-tls", "--max-connections", "5", "--max-handshakes", "7"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_EQ(r.config->max_connections, 5u);
  EXPECT_EQ(r.config->max_handshakes, 7u);
  for (const char* flag : {"--max-connections", "--max-handshakes"}) {
    for (const char* bad : {"0", "-1", "lots"}) {
      auto e = run({"-d", "a.io", "-w", "/w", "--no-tls", flag, bad});
      EXPECT_FALSE(e.config) << flag << " " << bad;
      EXPECT_EQ(e.exit_code, 2) << flag << " " << bad;
      EXPECT_THAT(e.output, testing::HasSubstr(flag)) << e.output;
    }
  }
  auto h = run({"--help"});
  EXPECT_THAT(h.output, testing::HasSubstr("--max-connections"));
  EXPECT_THAT(h.output, testing::HasSubstr("--max-handshakes"));
}

TEST(options, metrics_is_off_unless_given_and_binds_loopback_by_default) {
  auto off = run({"-d", "a.io", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(off.config) << off.output;
  EXPECT_FALSE(off.config->metrics_port);

  auto port_only = run({"-d", "a.io", "-w", "/w", "--no-tls", "--metrics", "9100"});
  ASSERT_TRUE(port_only.config) << port_only.output;
  EXPECT_EQ(port_only.config->metrics_port, 9100);
  EXPECT_EQ(port_only.config->metrics_bind, "127.0.0.1");

  auto any = run({"-d", "a.io", "-w", "/w", "--no-tls", "--metrics", "0.0.0.0:9100"});
  ASSERT_TRUE(any.config) << any.output;
  EXPECT_EQ(any.config->metrics_bind, "0.0.0.0");
  EXPECT_EQ(any.config->metrics_port, 9100);

  auto v6 = run({"-d", "a.io", "-w", "/w", "--no-tls", "--metrics", "[::1]:0"});
  ASSERT_TRUE(v6.config) << v6.output;
  EXPECT_EQ(v6.config->metrics_bind, "::1");
  EXPECT_EQ(v6.config->metrics_port, 0);

  auto named = run({"-d", "a.io", "-w", "/w", "--no-tls", "--metrics", "localhost:9100"});
  ASSERT_TRUE(named.config) << named.output;
  EXPECT_EQ(named.config->metrics_bind, "127.0.0.1");
}

TEST(options, bad_metrics_addresses_are_usage_errors) {
  for (const char* bad : {"", "abc", "99999", "127.0.0.1:65536", "::1:9100", "example.com:9100", "127.0.0.1:",
                          "[::1]", "1.2.3.4:9x"}) {
    auto r = run({"-d", "a.io", "-w", "/w", "--no-tls", "--metrics", bad});
    EXPECT_FALSE(r.config) << bad;
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_THAT(r.output, testing::HasSubstr("--metrics")) << bad;
  }
}

TEST(options, log_format_is_text_or_json) {
  auto def = run({"-d", "a.io", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(def.config) << def.output;
  EXPECT_EQ(def.config->log_format, "text");
  auto json = run({"-d", "a.io", "-w", "/w", "--no-tls", "--log-format", "json"});
  ASSERT_TRUE(json.config) << json.output;
  EXPECT_EQ(json.config->log_format, "json");
  auto bad = run({"-d", "a.io", "-w", "/w", "--no-tls", "--log-format", "xml"});
  EXPECT_FALSE(bad.config);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, testing::HasSubstr("--log-format"));
}

TEST(options, takeover_is_off_unless_asked) {
  auto plain = run({"-d", "a.io", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(plain.config) << plain.output;
  EXPECT_FALSE(plain.config->takeover);
  auto asked = run({"-d", "a.io", "-w", "/w", "--no-tls", "--takeover"});
  ASSERT_TRUE(asked.config) << asked.output;
  EXPECT_TRUE(asked.config->takeover);
  EXPECT_THAT(run({"--help"}).output, testing::HasSubstr("--takeover"));
  auto with_history = run({"-d", "a.io", "-w", "/w", "--no-tls", "--takeover", "--history-dir", "/h"});
  EXPECT_FALSE(with_history.config);
  EXPECT_EQ(with_history.exit_code, 2);
  EXPECT_THAT(with_history.output, testing::HasSubstr("--takeover cannot be used with --history-dir"));
}

TEST(options, behind_a_load_balancer) {
  auto d = run({"-d", "a.io", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(d.config) << d.output;
  EXPECT_FALSE(d.config->proxy_protocol);
  EXPECT_TRUE(d.config->trusted_proxies.empty());
  auto r = run({"-d", "a.io", "-w", "/w", "--no-tls", "--proxy-protocol", "--trusted-proxy", "10.0.0.0/8",
                "--trusted-proxy", "2001:db8::/32", "--trusted-proxy", "192.0.2.7"});
  ASSERT_TRUE(r.config) << r.output;
  EXPECT_TRUE(r.config->proxy_protocol);
  EXPECT_THAT(r.config->trusted_proxies, testing::ElementsAre("10.0.0.0/8", "2001:db8::/32", "192.0.2.7"));
  for (const char* bad : {"10.0.0.1/8", "10.0.0.0/33", "example.com", "::/129", "10.0.0.0/"}) {
    auto e = run({"-d", "a.io", "-w", "/w", "--no-tls", "--trusted-proxy", bad});
    EXPECT_FALSE(e.config) << bad;
    EXPECT_EQ(e.exit_code, 2) << bad;
    EXPECT_THAT(e.output, testing::HasSubstr("--trusted-proxy")) << e.output;
  }
  auto h = run({"--help"});
  EXPECT_THAT(h.output, testing::HasSubstr("--proxy-protocol"));
  EXPECT_THAT(h.output, testing::HasSubstr("--trusted-proxy"));
}

TEST(options, cluster_mode) {
  auto d = run({"-d", "a.io", "-w", "/w", "--no-tls"});
  ASSERT_TRUE(d.config) << d.output;
  EXPECT_TRUE(d.config->nats_urls.empty());
  EXPECT_EQ(d.config->nats_replicas, 1);
  EXPECT_EQ(d.config->nats_prefix, "mles");
  EXPECT_EQ(d.config->nats_buffer, 64u << 20);
  EXPECT_EQ(d.config->nats_session_ttl, std::chrono::seconds(30));
  auto r = run({"-d", "a.io", "-w", "/w", "--no-tls", "--nats",
                "nats://127.0.0.1:4222, tls://user:secret@n2.example:4443,nats://n3", "--nats-replicas", "3",
                "--nats-prefix", "chat-1", "--nats-buffer", "8MiB", "--nats-session-ttl", "2.5", "--nats-creds",
                "/etc/mles.creds", "--nats-ca", "/etc/ca.pem"});
  ASSERT_TRUE(r.config) << r.output;
  const auto& c = *r.config;
  EXPECT_THAT(c.nats_urls,
              testing::ElementsAre("nats://127.0.0.1:4222", "tls://user:secret@n2.example:4443", "nats://n3"));
  EXPECT_EQ(c.nats_replicas, 3);
  EXPECT_EQ(c.nats_prefix, "chat-1");
  EXPECT_EQ(c.nats_buffer, 8u << 20);
  EXPECT_EQ(c.nats_session_ttl, std::chrono::milliseconds(2500));
  EXPECT_EQ(c.nats_creds, std::filesystem::path("/etc/mles.creds"));
  EXPECT_EQ(c.nats_ca, std::filesystem::path("/etc/ca.pem"));
  EXPECT_THAT(run({"--help"}).output, testing::HasSubstr("--nats-replicas"));
}

TEST(options, cluster_mode_usage_errors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--nats", "http://n1:4222"}, "nats:// or tls://"},
      {{"--nats", "nats://n1,,nats://n2"}, "empty URL"},
      {{"--nats", "nats://"}, "no host"},
      {{"--nats", "nats://n1/path"}, "no path"},
      {{"--nats", "not a url"}, "not a URL"},
      {{"--nats", "nats://n1", "--nats-replicas", "0"}, "--nats-replicas"},
      {{"--nats", "nats://n1", "--nats-replicas", "6"}, "--nats-replicas"},
      {{"--nats", "nats://n1", "--nats-prefix", "a.b"}, "--nats-prefix"},
      {{"--nats", "nats://n1", "--nats-prefix", "a>"}, "--nats-prefix"},
      {{"--nats", "nats://n1", "--nats-buffer", "1KiB"}, "--nats-buffer"},
      {{"--nats", "nats://n1", "--nats-session-ttl", "0"}, "--nats-session-ttl"},
      {{"--nats-creds", "/c"}, "need --nats"},
      {{"--nats", "nats://n1", "--history-dir", "/h"}, "not used in cluster mode"},
  };
  for (const auto& [extra, expected] : cases) {
    std::vector<std::string> args{"-d", "a.io", "-w", "/w", "--no-tls"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = run(args);
    EXPECT_FALSE(r.config) << extra.back();
    EXPECT_EQ(r.exit_code, 2) << extra.back();
    EXPECT_THAT(r.output, testing::HasSubstr(expected)) << extra.back();
  }
}
