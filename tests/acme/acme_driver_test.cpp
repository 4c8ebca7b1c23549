// Integration tests for acme_driver and https_client against a real ACME CA: pebble and its
// mock DNS on loopback (tests/acme/pebble/start-pebble.sh), real HTTP-01 validation answered by
// a small responder in the test. Skipped when pebble cannot be started (not installed).
#include "acme/acme_driver.hpp"

#include "acme/certificate_chain.hpp"
#include "acme/challenge.hpp"
#include "acme/https_client.hpp"
#include "openssl_test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>

namespace mles::acme {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

const std::vector<std::string> two_names{"mles.test", "www.mles.test"};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs a shell command; its exit code (-1 when it did not exit normally).
int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Answers pebble's HTTP-01 validation requests (GET /.well-known/acme-challenge/<token>, with
// Host "<name>:<port>") from a path → key authorization map. Runs on the test's io_context.
class http01_responder {
 public:
  explicit http01_responder(asio::io_context& ioc) : acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}) {
    do_accept();
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  void answer(const std::string& path, const std::string& body) { answers_[path] = body; }
  void withdraw(const std::string& path) { answers_.erase(path); }
  unsigned answered() const { return answered_; }

 private:
  struct connection {
    explicit connection(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> request;
    bhttp::response<bhttp::string_body> response;
  };

  void do_accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec) return;
      serve(std::make_shared<connection>(std::move(socket)));
      do_accept();
    });
  }

  void serve(std::shared_ptr<connection> c) {
    c->stream.expires_after(10s);
    bhttp::async_read(c->stream, c->buffer, c->request, [this, c](const boost::system::error_code& ec, std::size_t) {
      if (ec) return;
      const auto found = answers_.find(std::string(c->request.target()));
      c->response.version(11);
      c->response.result(found == answers_.end() ? bhttp::status::not_found : bhttp::status::ok);
      c->response.set(bhttp::field::content_type, "text/plain");
      c->response.body() = found == answers_.end() ? "" : found->second;
      c->response.keep_alive(false);
      c->response.prepare_payload();
      if (found != answers_.end()) ++answered_;
      bhttp::async_write(c->stream, c->response, [c](const boost::system::error_code&, std::size_t) {
        c->stream.socket().shutdown(tcp::socket::shutdown_both);
      });
    });
  }

  tcp::acceptor acceptor_;
  std::map<std::string, std::string> answers_;
  unsigned answered_ = 0;
};

// The chain verifies up to pebble's root for every name, the leaf holds exactly the names
// as dNSName SANs, and the key belongs to the leaf.
void expect_valid_certificate(const done& issued, const std::string& root_pem, const std::vector<std::string>& names) {
  const auto pems = split_pem_chain(issued.certificate_chain_pem);
  ASSERT_GE(pems.size(), 2u) << "leaf and intermediate expected";
  auto leaf = test::read_certificate(pems[0]);
  ASSERT_TRUE(leaf);

  std::unique_ptr<STACK_OF(X509), decltype([](STACK_OF(X509)* s) { sk_X509_pop_free(s, X509_free); })> untrusted(
      sk_X509_new_null());
  for (std::size_t i = 1; i < pems.size(); ++i) {
    auto cert = test::read_certificate(pems[i]);
    ASSERT_TRUE(cert);
    ASSERT_GT(sk_X509_push(untrusted.get(), cert.release()), 0);
  }
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  auto root = test::read_certificate(root_pem);
  ASSERT_TRUE(root) << "pebble root unreadable";
  ASSERT_EQ(X509_STORE_add_cert(store.get(), root.get()), 1);

  for (const std::string& name : names) {
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
    ASSERT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get()), 1);
    ASSERT_EQ(X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER), 1);
    ASSERT_EQ(X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx.get()), name.c_str(), name.size()), 1);
    EXPECT_EQ(X509_verify_cert(ctx.get()), 1)
        << name << ": " << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  }

  std::vector<std::string> sans;
  auto* general_names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf.get(), NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(general_names, nullptr);
  for (int i = 0; i < sk_GENERAL_NAME_num(general_names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(general_names, i);
    ASSERT_EQ(gn->type, GEN_DNS);
    const ASN1_IA5STRING* dns = gn->d.dNSName;
    sans.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                      static_cast<std::size_t>(ASN1_STRING_length(dns)));
  }
  GENERAL_NAMES_free(general_names);
  std::sort(sans.begin(), sans.end());
  auto expected = names;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(sans, expected);

  auto key = test::read_private_key(issued.key_pem);
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_check_private_key(leaf.get(), key.get()), 1);
  // start-pebble.sh asks for 90-day certificates; pebble sets notAfter = notBefore + period - 1 s.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(issued.not_after - issued.not_before), 7776000s - 1s);
}

// A fresh pebble per test (its state, root included, is new at every start), in a temp dir,
// with the HTTP-01 responder already listening on the port pebble's VA will dial.
class pebble_test : public ::testing::Test {
 protected:
  explicit pebble_test(unsigned nonce_reject_percent = 0) : nonce_reject_percent_(nonce_reject_percent) {}

  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "mles-acme-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    temp_dir_ = pattern;
    const std::string script = MLES_START_PEBBLE_SCRIPT;
    const auto log = temp_dir_ / "start-pebble.log";
    const int rc = run_shell("PEBBLE_HTTP_PORT=" + std::to_string(responder_.port()) +
                             " PEBBLE_WFE_NONCEREJECT=" + std::to_string(nonce_reject_percent_) + " '" + script +
                             "' start '" + temp_dir_.string() + "' >'" + log.string() + "' 2>&1");
    if (rc != 0) {
      GTEST_SKIP() << "pebble could not be started (scripts/install-deps.sh installs Debian's pebble): "
                   << read_file(log);
    }
    started_ = true;
    read_env(script);
    ASSERT_FALSE(env_["PEBBLE_DIRECTORY_URL"].empty());
    auto tls = client_tls::from_ca_file(env_["PEBBLE_HTTPS_CA"]);
    ASSERT_TRUE(tls) << tls.error().message();
    tls_ = *tls;
  }

  void TearDown() override {
    if (started_) run_shell("'" + std::string(MLES_START_PEBBLE_SCRIPT) + "' stop '" + temp_dir_.string() + "' 2>/dev/null");
    if (!temp_dir_.empty()) std::filesystem::remove_all(temp_dir_);
  }

  // The exports of `start-pebble.sh env`: lines "export NAME='value'".
  void read_env(const std::string& script) {
    const std::string command = "'" + script + "' env '" + temp_dir_.string() + "'";
    std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(command.c_str(), "r"), pclose);
    ASSERT_TRUE(pipe);
    char line[4096];
    while (std::fgets(line, sizeof line, pipe.get())) {
      std::string text(line);
      const auto eq = text.find('=');
      const auto open = text.find('\'');
      const auto close = text.rfind('\'');
      if (text.rfind("export ", 0) != 0 || eq == std::string::npos || open == close) continue;
      env_[text.substr(7, eq - 7)] = text.substr(open + 1, close - open - 1);
    }
  }

  order_settings settings(std::vector<std::string> names) {
    order_settings s;
    s.directory_url = env_["PEBBLE_DIRECTORY_URL"];
    s.names = std::move(names);
    s.emails = {"admin@mles.test"};
    s.challenge_preference = {challenge_type::http_01};
    s.poll_initial = 100ms;  // pebble validates in milliseconds (PEBBLE_VA_NOSLEEP=1)
    s.poll_max = 1000ms;
    return s;
  }

  // Runs one order to its end through the HTTP-01 responder.
  order_outcome run_order(order_settings s) {
    auto key = p256_key::generate();
    EXPECT_TRUE(key);
    challenge_hooks hooks;
    hooks.provision = [this](const provision_challenge& c, std::function<void()> ready) {
      EXPECT_EQ(c.type, challenge_type::http_01);
      responder_.answer(http01_path(c.token), c.key_authorization);
      ++provisioned_;
      ready();
    };
    hooks.withdraw = [this](const provision_challenge& c) {
      responder_.withdraw(http01_path(c.token));
      ++withdrawn_;
    };
    hooks.exchanged = [this](http_method, const std::string&, const boost::system::error_code&,
                             const http_response& r) {
      if (r.status == 400 && r.body.find("urn:ietf:params:acme:error:badNonce") != std::string::npos) ++bad_nonces_;
    };
    driver_limits limits;
    limits.total_timeout = 90s;
    std::optional<order_outcome> outcome;
    auto driver = acme_driver::start(ioc_.get_executor(), order_flow(std::move(s), *key), tls_, hooks, limits,
                                     [&](order_outcome o) {
                                       outcome = std::move(o);
                                       ioc_.stop();
                                     });
    ioc_.restart();
    ioc_.run_for(100s);
    if (!outcome) return failed{asio::error::timed_out, {}, "test deadline", std::nullopt};
    return std::move(*outcome);
  }

  // One https_client request, run to its end.
  std::pair<boost::system::error_code, http_response> fetch(http_request req, const client_tls& tls) {
    std::optional<std::pair<boost::system::error_code, http_response>> result;
    request(ioc_.get_executor(), std::move(req), tls, https_limits{}, [&](boost::system::error_code ec, http_response r) {
      result.emplace(ec, std::move(r));
      ioc_.stop();
    });
    ioc_.restart();
    ioc_.run_for(30s);
    return result.value_or(std::pair{make_error_code(asio::error::timed_out), http_response{}});
  }

  static std::string describe(const order_outcome& outcome) {
    if (const auto* f = std::get_if<failed>(&outcome))
      return f->error.message() + " | " + f->problem_type + " | " + f->detail;
    return "done";
  }

  unsigned nonce_reject_percent_;
  asio::io_context ioc_;
  http01_responder responder_{ioc_};
  std::filesystem::path temp_dir_;
  bool started_ = false;
  std::map<std::string, std::string> env_;
  client_tls tls_ = client_tls::system_trust().value();
  unsigned provisioned_ = 0;
  unsigned withdrawn_ = 0;
  unsigned bad_nonces_ = 0;  // badNonce problems the CA answered
};

using acme_driver_pebble = pebble_test;

TEST_F(acme_driver_pebble, issues_one_certificate_for_two_names_through_http01) {
  const auto outcome = run_order(settings(two_names));
  ASSERT_TRUE(std::holds_alternative<done>(outcome)) << describe(outcome);
  expect_valid_certificate(std::get<done>(outcome), read_file(env_["PEBBLE_ROOT_PEM"]), two_names);
  // One authorization per name (PEBBLE_AUTHZREUSE=0); pebble's VA asks several times each.
  EXPECT_EQ(provisioned_, 2u);
  EXPECT_EQ(withdrawn_, 2u);
  EXPECT_GE(responder_.answered(), 2u);
  EXPECT_EQ(bad_nonces_, 0u);
}

TEST_F(acme_driver_pebble, reports_the_ca_problem_when_validation_fails) {
  challenge_hooks hooks;
  auto s = settings({"mles.test"});
  // The responder is not told the token: the VA gets 404 and the authorization turns invalid.
  auto key = p256_key::generate();
  ASSERT_TRUE(key);
  hooks.provision = [this](const provision_challenge&, std::function<void()> ready) {
    ++provisioned_;
    ready();
  };
  hooks.withdraw = [this](const provision_challenge&) { ++withdrawn_; };
  std::optional<order_outcome> outcome;
  acme_driver::start(ioc_.get_executor(), order_flow(std::move(s), *key), tls_, hooks, driver_limits{},
                     [&](order_outcome o) {
                       outcome = std::move(o);
                       ioc_.stop();
                     });
  ioc_.run_for(60s);
  ASSERT_TRUE(outcome);
  const auto* f = std::get_if<failed>(&*outcome);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->error, make_error_code(errc::authorization_invalid)) << describe(*outcome);
  EXPECT_EQ(f->problem_type, "urn:ietf:params:acme:error:unauthorized") << describe(*outcome);
  EXPECT_NE(f->detail.find("404"), std::string::npos) << f->detail;
  EXPECT_EQ(provisioned_, 1u);
  EXPECT_EQ(withdrawn_, 1u);
}

TEST_F(acme_driver_pebble, cancel_ends_the_order_and_withdraws_its_challenges) {
  auto key = p256_key::generate();
  ASSERT_TRUE(key);
  std::shared_ptr<acme_driver> driver;
  challenge_hooks hooks;
  // Never ready: the order waits on the responder until cancelled.
  hooks.provision = [&](const provision_challenge&, std::function<void()>) {
    ++provisioned_;
    driver->cancel();
  };
  hooks.withdraw = [this](const provision_challenge&) { ++withdrawn_; };
  std::optional<order_outcome> outcome;
  driver = acme_driver::start(ioc_.get_executor(), order_flow(settings({"mles.test"}), *key), tls_, hooks,
                              driver_limits{}, [&](order_outcome o) {
                                outcome = std::move(o);
                                ioc_.stop();
                              });
  ioc_.run_for(30s);
  ASSERT_TRUE(outcome);
  ASSERT_TRUE(std::holds_alternative<failed>(*outcome));
  EXPECT_EQ(std::get<failed>(*outcome).error, asio::error::operation_aborted);
  EXPECT_EQ(provisioned_, 1u);
  EXPECT_EQ(withdrawn_, 1u);
}

TEST_F(acme_driver_pebble, fails_at_the_total_deadline) {
  // The order waits for a challenge that never gets ready until the total deadline ends it.
  // How long the steps before the challenge take depends on the machine (a sanitizer build on
  // a busy box can need seconds), so no deadline is assumed long enough: every attempt must
  // time out and withdraw exactly what it provisioned, and the attempts, with a deadline
  // longer each, go on until one provisioned before its deadline.
  auto key = p256_key::generate();
  ASSERT_TRUE(key);
  bool provisioned_before_the_deadline = false;
  for (const auto total : {1000ms, 4000ms, 16000ms, 40000ms}) {
    challenge_hooks hooks;
    unsigned provisioned = 0, withdrawn = 0;
    hooks.provision = [&](const provision_challenge&, std::function<void()>) { ++provisioned; };  // never ready
    hooks.withdraw = [&](const provision_challenge&) { ++withdrawn; };
    driver_limits limits;
    limits.total_timeout = total;
    std::optional<order_outcome> outcome;
    const auto driver = acme_driver::start(ioc_.get_executor(), order_flow(settings({"mles.test"}), *key), tls_,
                                           hooks, limits, [&](order_outcome o) {
                                             outcome = std::move(o);
                                             ioc_.stop();
                                           });
    ioc_.restart();
    ioc_.run_for(total + 30s);
    ASSERT_TRUE(outcome) << "no outcome " << (total + 30s).count() << " ms after the start";
    ASSERT_TRUE(std::holds_alternative<failed>(*outcome)) << describe(*outcome);
    EXPECT_EQ(std::get<failed>(*outcome).error, asio::error::timed_out) << describe(*outcome);
    EXPECT_LE(provisioned, 1u);
    EXPECT_EQ(withdrawn, provisioned) << "what was provisioned is withdrawn at the deadline";
    if (provisioned == 1) {
      provisioned_before_the_deadline = true;
      break;
    }
  }
  EXPECT_TRUE(provisioned_before_the_deadline) << "no attempt reached the challenge within 40 s";
}

class acme_driver_bad_nonce_storm : public pebble_test {
 protected:
  acme_driver_bad_nonce_storm() : pebble_test(50) {}
};

TEST_F(acme_driver_bad_nonce_storm, still_issues_when_half_the_nonces_are_rejected) {
  auto s = settings(two_names);
  // 50 % rejection: 20 retries in a row per request fail with odds of 1 in 2^21.
  s.max_bad_nonce_retries = 20;
  const auto outcome = run_order(std::move(s));
  ASSERT_TRUE(std::holds_alternative<done>(outcome)) << describe(outcome);
  // ~15 signed requests at 50 %: no badNonce at all has odds of about 1 in 30000.
  EXPECT_GT(bad_nonces_, 0u);
  expect_valid_certificate(std::get<done>(outcome), read_file(env_["PEBBLE_ROOT_PEM"]), two_names);
}

using https_client_pebble = pebble_test;

TEST_F(https_client_pebble, fetches_the_directory_trusting_the_given_ca_file) {
  const auto [ec, response] = fetch({http_method::get, env_["PEBBLE_DIRECTORY_URL"], {}, {}, {}}, tls_);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(response.status, 200u);
  EXPECT_TRUE(boost::json::parse(response.body).as_object().contains("newOrder"));
}

TEST_F(https_client_pebble, head_returns_a_replay_nonce_and_no_body) {
  const auto directory = boost::json::parse(fetch({http_method::get, env_["PEBBLE_DIRECTORY_URL"], {}, {}, {}}, tls_)
                                                .second.body);
  const std::string new_nonce(directory.at("newNonce").as_string());
  const auto [ec, response] = fetch({http_method::head, new_nonce, {}, {}, {}}, tls_);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(response.status, 200u);
  EXPECT_FALSE(response.replay_nonce.empty());
  EXPECT_TRUE(response.body.empty());
}

TEST_F(https_client_pebble, refuses_a_server_its_trust_store_does_not_vouch_for) {
  auto system = client_tls::system_trust();
  ASSERT_TRUE(system);
  const auto [ec, response] = fetch({http_method::get, env_["PEBBLE_DIRECTORY_URL"], {}, {}, {}}, *system);
  EXPECT_EQ(ec.category(), asio::error::get_ssl_category()) << ec.message();
  EXPECT_EQ(response.status, 0u);
}

TEST_F(https_client_pebble, refuses_urls_that_are_not_https) {
  const auto [ec, response] = fetch({http_method::get, "http://127.0.0.1/dir", {}, {}, {}}, tls_);
  EXPECT_EQ(ec, boost::system::errc::invalid_argument);
}

}  // namespace
}  // namespace mles::acme
