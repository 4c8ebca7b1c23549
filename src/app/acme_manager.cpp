// acme_manager: cached certificate at start, orders, installation, renewal, retries.
#include "app/acme_manager.hpp"

#include "acme/certificate_chain.hpp"
#include "acme/challenge.hpp"
#include "acme/https_client.hpp"
#include "acme/resources.hpp"
#include "http/conditional.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <stdexcept>

namespace mles::app {

namespace {

std::string date_of(std::chrono::system_clock::time_point t) {
  return http::format_http_date(std::chrono::floor<std::chrono::seconds>(t));
}

}  // namespace

acme_manager::acme_manager(acme_settings settings, net::tls_registry& registry, http::challenge_tokens& tokens,
                           boost::asio::any_io_executor ex)
    : settings_(std::move(settings)), registry_(registry), tokens_(tokens), ex_(ex),
      tls_([&] {
        auto t = settings_.ca_file ? acme::client_tls::from_ca_file(settings_.ca_file->string())
                                   : acme::client_tls::system_trust();
        if (!t) {
          throw std::runtime_error("cannot use the ACME CA certificate" +
                                   (settings_.ca_file ? " " + settings_.ca_file->string() : std::string{}) + ": " +
                                   t.error().message());
        }
        return std::move(*t);
      }()),
      timer_(ex), ari_timer_(ex), alive_(std::make_shared<bool>(true)) {
  for (const auto& e : settings_.emails) contacts_.push_back("mailto:" + e);
  if (settings_.cache) {
    cache_.emplace(*settings_.cache);
    if (auto ec = cache_->prepare())
      throw std::runtime_error("cannot use --cache " + settings_.cache->string() + ": " + ec.message());
  }
}

acme_manager::~acme_manager() { *alive_ = false; }

void acme_manager::start() {
  boost::asio::post(ex_, [this, alive = alive_] {
    if (!*alive) return;
    if (!cache_) {
      spdlog::warn("no --cache: every restart orders a new certificate, which can hit the CA's rate limits");
    }
    if (!ensure_account()) return retry_later();
    if (!load_cached_certificate()) {
      spdlog::warn("ACME: no valid certificate yet for {}; serving a temporary self-signed certificate "
                   "until {} issues one",
                   settings_.domains.front(), settings_.directory_url);
      begin_order();
    }
  });
}

void acme_manager::stop() {
  boost::asio::post(ex_, [this, alive = alive_] {
    if (!*alive) return;
    timer_.cancel();
    ari_timer_.cancel();
    if (driver_) driver_->cancel();
  });
}

bool acme_manager::ensure_account() {
  if (account_) return true;
  const auto path = cache_ ? cache_->account_path(contacts_, settings_.directory_url) : std::filesystem::path{};
  if (cache_) {
    boost::system::error_code ec;
    if (auto der = cache_->load(path, ec)) {
      if (auto key = acme::p256_key::from_pkcs8_der(*der)) {
        account_ = std::move(*key);
        spdlog::info("ACME: account key loaded from {}", path.string());
        return true;
      }
      spdlog::warn("ACME: {} is not a usable account key; creating a new account key", path.string());
    } else if (ec) {
      spdlog::error("ACME: cannot read {}: {}", path.string(), ec.message());
    }
  }
  auto key = acme::p256_key::generate();
  if (!key) {
    spdlog::error("ACME: cannot generate an account key: {}", key.error().message());
    return false;
  }
  account_ = std::move(*key);
  if (cache_) {
    if (auto ec = cache_->store(path, account_->to_pkcs8_der()))
      spdlog::error("ACME: cannot store the account key in {}: {}", path.string(), ec.message());
  }
  return true;
}

bool acme_manager::load_cached_certificate() {
  if (!cache_) return false;
  const auto path = cache_->certificate_path(settings_.domains, settings_.directory_url);
  boost::system::error_code ec;
  const auto text = cache_->load(path, ec);
  if (ec) spdlog::error("ACME: cannot read {}: {}", path.string(), ec.message());
  if (!text) return false;
  const auto parts = store::acme_cache::split_certificate_file(*text);
  if (!parts) {
    spdlog::warn("ACME: {} holds no key and certificate; ordering a new one", path.string());
    return false;
  }
  const auto validity = acme::read_leaf_validity(parts->second);
  if (!validity || validity->not_after <= std::chrono::system_clock::now()) {
    spdlog::warn("ACME: the cached certificate in {} has expired; ordering a new one", path.string());
    return false;
  }
  return install(parts->second, parts->first, "cache");
}

// Serves the chain for every domain (and clients without SNI), then plans the renewal.
bool acme_manager::install(const std::string& chain_pem, const std::string& key_pem, const char* source) {
  const auto validity = acme::read_leaf_validity(chain_pem);
  if (!validity) {
    spdlog::error("ACME: certificate from {} has no readable validity", source);
    return false;
  }
  net::ssl_ctx_ptr ctx;
  try {
    ctx = net::make_server_context_from_pem(chain_pem, key_pem);
  } catch (const std::exception& e) {
    spdlog::error("ACME: certificate from {} cannot be used: {}", source, e.what());
    return false;
  }
  // Live sessions keep the context they started with; new handshakes get this one.
  registry_.set_fallback(ctx);
  for (const auto& d : settings_.domains) registry_.set(d, ctx);
  expires_ = validity->not_after;
  figures_.served_until.store(std::chrono::duration_cast<std::chrono::seconds>(validity->not_after.time_since_epoch()).count(),
                              std::memory_order_relaxed);
  const auto renew = acme::renewal_time(*validity);
  spdlog::warn("ACME: certificate for {} from {} installed; expires {}; renewal planned for {}",
               settings_.domains.front(), source, date_of(validity->not_after), date_of(renew));
  failures_ = 0;
  schedule(renew);
  ari_id_ = acme::ari_certificate_id(chain_pem);
  check_renewal_info();
  return true;
}

// RFC 9773: ask the CA (if its directory offers renewalInfo) when to renew this certificate.
void acme_manager::check_renewal_info() {
  if (!ari_id_) return;
  acme::http_request get_directory;
  get_directory.url = settings_.directory_url;
  acme::request(ex_, std::move(get_directory), tls_, {},
                [this, alive = alive_, id = *ari_id_](boost::system::error_code ec, acme::http_response res) {
                  if (!*alive || ec || res.status != 200) return;
                  const auto dir = acme::parse_directory(res.body);
                  if (!dir || !dir->renewal_info) return;  // no ARI at this CA: 2/3 of the lifetime
                  acme::http_request get_info;
                  get_info.url = *dir->renewal_info + "/" + id;
                  acme::request(ex_, std::move(get_info), tls_, {},
                                [this, alive](boost::system::error_code e, acme::http_response info) {
                                  if (!*alive) return;
                                  if (!e && info.status == 200) {
                                    if (auto w = acme::parse_renewal_info(info.body)) on_renewal_window(*w);
                                    else spdlog::warn("ACME: unusable renewalInfo answer: {}", w.error().message());
                                  }
                                  // Ask again later (RFC 9773 §4.3 suggests at least every few hours).
                                  ari_timer_.expires_after(std::chrono::hours(6));
                                  ari_timer_.async_wait([this, alive](const boost::system::error_code& te) {
                                    if (!te && *alive) check_renewal_info();
                                  });
                                });
                });
}

void acme_manager::on_renewal_window(const acme::renewal_window& window) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto when = acme::choose_renewal_time(window, std::chrono::system_clock::now(), rng);
  if (when >= planned_) return;  // the 2/3 plan is earlier already
  spdlog::warn("ACME: the CA suggests renewing between {} and {} (RFC 9773); renewal planned for {}",
               date_of(window.start), date_of(window.end), date_of(when));
  if (!driver_) schedule(when);
}

void acme_manager::schedule(std::chrono::system_clock::time_point when) {
  planned_ = when;
  const auto delay = std::max(std::chrono::system_clock::duration::zero(), when - std::chrono::system_clock::now());
  timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay));
  timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive) return;
    begin_order();
  });
}

void acme_manager::retry_later() {
  // Capped exponential backoff with ±20 % jitter.
  const double factor = std::min(1e6, std::pow(2.0, static_cast<double>(std::min(failures_, 30u))));
  auto delay = std::min<double>(static_cast<double>(settings_.retry_max.count()),
                                static_cast<double>(settings_.retry_initial.count()) * factor);
  static thread_local std::mt19937 rng{std::random_device{}()};
  delay *= std::uniform_real_distribution<double>(0.8, 1.2)(rng);
  ++failures_;
  const auto when = std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double, std::milli>(delay));
  spdlog::warn("ACME: next attempt at {}{}", date_of(when),
               expires_ ? "; the current certificate expires " + date_of(*expires_)
                        : std::string("; no certificate from the CA yet"));
  schedule(when);
}

void acme_manager::begin_order() {
  if (driver_ || !ensure_account()) return;
  if (settings_.ca_file) {
    // Read again for every order: a replaced CA file needs no restart.
    auto t = acme::client_tls::from_ca_file(settings_.ca_file->string());
    if (!t) {
      spdlog::error("ACME: cannot use the CA certificate {}: {}", settings_.ca_file->string(), t.error().message());
      return retry_later();
    }
    tls_ = std::move(*t);
  }
  acme::order_settings os;
  os.directory_url = settings_.directory_url;
  os.names = settings_.domains;
  os.emails = settings_.emails;
  // TLS-ALPN-01 is always answerable (our TLS port); HTTP-01 only with the --redirect port.
  os.challenge_preference = {acme::challenge_type::tls_alpn_01};
  if (settings_.http01) {
    const auto where = settings_.prefer_http01 ? os.challenge_preference.begin() : os.challenge_preference.end();
    os.challenge_preference.insert(where, acme::challenge_type::http_01);
  }
  spdlog::warn("ACME: ordering a certificate for {} from {}", fmt::join(settings_.domains, ", "),
               settings_.directory_url);
  acme::challenge_hooks hooks;
  hooks.provision = [this, alive = alive_](const acme::provision_challenge& c, std::function<void()> ready) {
    if (!*alive) return;
    if (c.type == acme::challenge_type::http_01) {
      tokens_.set(c.token, c.key_authorization);
    } else {
      auto cert = acme::make_tls_alpn01_certificate(c.name, c.key_authorization);
      if (!cert) {
        spdlog::error("ACME: cannot build the tls-alpn-01 certificate for {}: {}", c.name, cert.error().message());
      } else {
        registry_.set_challenge(c.name, net::make_acme_challenge_context(cert->cert_pem, cert->key_pem));
      }
    }
    ready();
  };
  hooks.withdraw = [this, alive = alive_](const acme::provision_challenge& c) {
    if (!*alive) return;
    if (c.type == acme::challenge_type::http_01) tokens_.erase(c.token);
    else registry_.clear_challenge(c.name);
  };
  driver_ = acme::acme_driver::start(ex_, acme::order_flow(std::move(os), *account_), tls_, std::move(hooks), {},
                                     [this, alive = alive_](acme::order_outcome outcome) {
                                       if (!*alive) return;
                                       on_outcome(std::move(outcome));
                                     });
}

bool acme_manager::has_certificate() const noexcept {
  const auto until = figures_.served_until.load(std::memory_order_relaxed);
  return until > 0 && std::chrono::system_clock::now() < std::chrono::system_clock::time_point(std::chrono::seconds(until));
}

void acme_manager::on_outcome(acme::order_outcome outcome) {
  driver_.reset();
  const bool ordered = std::holds_alternative<acme::done>(outcome);
  figures_.last_result_time.store(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count(),
      std::memory_order_relaxed);
  figures_.last_result_ok.store(ordered, std::memory_order_relaxed);
  if (auto* ok = std::get_if<acme::done>(&outcome)) {
    if (install(ok->certificate_chain_pem, ok->key_pem, settings_.directory_url.c_str())) {
      if (cache_) {
        const auto path = cache_->certificate_path(settings_.domains, settings_.directory_url);
        if (auto ec = cache_->store(path, store::acme_cache::join_certificate_file(ok->key_pem, ok->certificate_chain_pem)))
          spdlog::error("ACME: cannot store the certificate in {}: {}", path.string(), ec.message());
      }
      return;
    }
    figures_.last_result_ok.store(false, std::memory_order_relaxed);  // issued but not usable
    return retry_later();
  }
  const auto& f = std::get<acme::failed>(outcome);
  // The CA's words, verbatim.
  spdlog::error("ACME: order failed: {} {}{}", f.problem_type.empty() ? f.error.message() : f.problem_type, f.detail,
                f.retry_after ? " (the CA asks to retry after " + std::to_string(f.retry_after->count()) + " s)" : "");
  if (f.retry_after && failures_ == 0) {
    ++failures_;
    return schedule(std::chrono::system_clock::now() + *f.retry_after);
  }
  retry_later();
}

}  // namespace mles::app
