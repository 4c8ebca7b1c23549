// Parsers for ACME resources and problem documents (RFC 8555 §7.1, §6.7). Pure: no I/O.
// Boost.JSON with a depth limit; every exception (allocation included) becomes an error code.
#include "acme/resources.hpp"

#include "acme/error.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <utility>

namespace mles::acme {

namespace {

namespace json = boost::json;

// ACME resources nest three levels (authorization → challenge → problem → subproblem →
// identifier); anything much deeper is hostile.
constexpr std::size_t max_depth = 16;

boost::system::result<json::object> parse_object(std::string_view body) {
  json::parse_options options;
  options.max_depth = max_depth;
  boost::system::error_code ec;
  json::value root = json::parse(body, ec, {}, options);
  if (ec) return errc::invalid_json;
  if (!root.is_object()) return errc::malformed_resource;
  return std::move(root.as_object());
}

// Optional string member: absent (or null) → nullopt; present and not a string → error.
boost::system::result<std::optional<std::string>> optional_string(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  const json::string* s = v->if_string();
  if (s == nullptr) return errc::malformed_resource;
  return std::optional<std::string>(std::string(s->data(), s->size()));
}

// Required non-empty string member.
boost::system::result<std::string> required_string(const json::object& obj, std::string_view key) {
  auto s = optional_string(obj, key);
  if (!s) return s.error();
  if (!*s || (*s)->empty()) return errc::malformed_resource;
  return std::move(**s);
}

boost::system::result<status> required_status(const json::object& obj) {
  const auto text = required_string(obj, "status");
  if (!text) return text.error();
  const auto parsed = parse_status(*text);
  if (!parsed) return errc::malformed_resource;
  return *parsed;
}

// A required array of non-empty strings.
boost::system::result<std::vector<std::string>> string_array(const json::object& obj, std::string_view key,
                                                             bool required) {
  std::vector<std::string> out;
  const json::value* v = obj.if_contains(key);
  if (v == nullptr) {
    if (required) return errc::malformed_resource;
    return out;
  }
  const json::array* a = v->if_array();
  if (a == nullptr) return errc::malformed_resource;
  out.reserve(a->size());
  for (const json::value& item : *a) {
    const json::string* s = item.if_string();
    if (s == nullptr || s->empty()) return errc::malformed_resource;
    out.emplace_back(s->data(), s->size());
  }
  return out;
}

boost::system::result<identifier> identifier_from(const json::value& v) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) return errc::malformed_resource;
  auto type = required_string(*obj, "type");
  auto value = required_string(*obj, "value");
  if (!type || !value) return errc::malformed_resource;
  return identifier{std::move(*type), std::move(*value)};
}

boost::system::result<problem> problem_from(const json::object& obj, bool with_subproblems) {
  problem out;
  auto type = required_string(obj, "type");
  if (!type) return type.error();
  out.type = std::move(*type);
  auto detail = optional_string(obj, "detail");
  if (!detail) return detail.error();
  out.detail = detail->value_or(std::string());
  if (const json::value* s = obj.if_contains("status"); s != nullptr && !s->is_null()) {
    const auto* n = s->if_int64();
    if (n == nullptr || *n < 100 || *n > 599) return errc::malformed_resource;
    out.status = static_cast<int>(*n);
  }
  if (const json::value* id = obj.if_contains("identifier"); id != nullptr && !id->is_null()) {
    auto parsed = identifier_from(*id);
    if (!parsed) return parsed.error();
    out.identifier = std::move(*parsed);
  }
  const json::value* subs = obj.if_contains("subproblems");
  if (!with_subproblems || subs == nullptr || subs->is_null()) return out;
  const json::array* a = subs->if_array();
  if (a == nullptr) return errc::malformed_resource;
  for (const json::value& item : *a) {
    const json::object* sub = item.if_object();
    if (sub == nullptr) return errc::malformed_resource;
    auto parsed = problem_from(*sub, false);
    if (!parsed) return parsed.error();
    out.subproblems.push_back(std::move(*parsed));
  }
  return out;
}

// An optional embedded problem ("error" of orders and challenges).
boost::system::result<std::optional<problem>> optional_problem(const json::object& obj) {
  const json::value* v = obj.if_contains("error");
  if (v == nullptr || v->is_null()) return std::optional<problem>();
  const json::object* o = v->if_object();
  if (o == nullptr) return errc::malformed_resource;
  auto parsed = problem_from(*o, true);
  if (!parsed) return parsed.error();
  return std::optional<problem>(std::move(*parsed));
}

boost::system::result<challenge> challenge_from(const json::object& obj) {
  challenge out;
  auto type = required_string(obj, "type");
  auto url = required_string(obj, "url");
  auto token = optional_string(obj, "token");
  auto st = required_status(obj);
  auto error = optional_problem(obj);
  if (!type || !url || !token || !st || !error) return errc::malformed_resource;
  out.type = std::move(*type);
  out.url = std::move(*url);
  out.token = token->value_or(std::string());
  out.status = *st;
  out.error = std::move(*error);
  return out;
}

// Runs a parser over the body's object; allocation failure is a malformed response, never an
// exception out of the parser.
template <class Parse>
auto guarded(std::string_view body, Parse parse) -> decltype(parse(std::declval<const json::object&>())) {
  try {
    const auto obj = parse_object(body);
    if (!obj) return obj.error();
    return parse(*obj);
  } catch (...) {
    return errc::malformed_resource;
  }
}

}  // namespace

std::optional<status> parse_status(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, status>, 8> names{{
      {"pending", status::pending},
      {"ready", status::ready},
      {"processing", status::processing},
      {"valid", status::valid},
      {"invalid", status::invalid},
      {"deactivated", status::deactivated},
      {"expired", status::expired},
      {"revoked", status::revoked},
  }};
  for (const auto& [name, value] : names) {
    if (name == text) return value;
  }
  return std::nullopt;
}

boost::system::result<directory> parse_directory(std::string_view body) {
  return guarded(body, [](const json::object& obj) -> boost::system::result<directory> {
    directory out;
    auto new_nonce = required_string(obj, "newNonce");
    auto new_account = required_string(obj, "newAccount");
    auto new_order = required_string(obj, "newOrder");
    auto renewal_info = optional_string(obj, "renewalInfo");
    if (!new_nonce || !new_account || !new_order || !renewal_info) return errc::malformed_resource;
    out.new_nonce = std::move(*new_nonce);
    out.new_account = std::move(*new_account);
    out.new_order = std::move(*new_order);
    out.renewal_info = std::move(*renewal_info);
    if (const json::value* m = obj.if_contains("meta"); m != nullptr && !m->is_null()) {
      const json::object* meta = m->if_object();
      if (meta == nullptr) return errc::malformed_resource;
      auto terms = optional_string(*meta, "termsOfService");
      if (!terms) return terms.error();
      out.terms_of_service = std::move(*terms);
      if (const json::value* ear = meta->if_contains("externalAccountRequired"); ear != nullptr) {
        const bool* b = ear->if_bool();
        if (b == nullptr) return errc::malformed_resource;
        out.external_account_required = *b;
      }
    }
    return out;
  });
}

boost::system::result<account> parse_account(std::string_view body) {
  return guarded(body, [](const json::object& obj) -> boost::system::result<account> {
    auto st = required_status(obj);
    auto contact = string_array(obj, "contact", false);
    if (!st || !contact) return errc::malformed_resource;
    return account{*st, std::move(*contact)};
  });
}

boost::system::result<order> parse_order(std::string_view body) {
  return guarded(body, [](const json::object& obj) -> boost::system::result<order> {
    order out;
    auto st = required_status(obj);
    auto authorizations = string_array(obj, "authorizations", true);
    auto finalize = required_string(obj, "finalize");
    auto certificate = optional_string(obj, "certificate");
    auto expires = optional_string(obj, "expires");
    auto error = optional_problem(obj);
    const json::value* ids = obj.if_contains("identifiers");
    if (!st || !authorizations || !finalize || !certificate || !expires || !error || ids == nullptr ||
        !ids->is_array()) {
      return errc::malformed_resource;
    }
    for (const json::value& item : ids->get_array()) {
      auto id = identifier_from(item);
      if (!id) return id.error();
      out.identifiers.push_back(std::move(*id));
    }
    out.status = *st;
    out.authorizations = std::move(*authorizations);
    out.finalize = std::move(*finalize);
    out.certificate = std::move(*certificate);
    out.expires = std::move(*expires);
    out.error = std::move(*error);
    return out;
  });
}

boost::system::result<authorization> parse_authorization(std::string_view body) {
  return guarded(body, [](const json::object& obj) -> boost::system::result<authorization> {
    authorization out;
    auto st = required_status(obj);
    auto expires = optional_string(obj, "expires");
    const json::value* id = obj.if_contains("identifier");
    const json::value* challenges = obj.if_contains("challenges");
    if (!st || !expires || id == nullptr || challenges == nullptr || !challenges->is_array()) {
      return errc::malformed_resource;
    }
    auto parsed_id = identifier_from(*id);
    if (!parsed_id) return parsed_id.error();
    for (const json::value& item : challenges->get_array()) {
      const json::object* c_obj = item.if_object();
      if (c_obj == nullptr) return errc::malformed_resource;
      auto c = challenge_from(*c_obj);
      if (!c) return c.error();
      out.challenges.push_back(std::move(*c));
    }
    if (const json::value* w = obj.if_contains("wildcard"); w != nullptr) {
      const bool* b = w->if_bool();
      if (b == nullptr) return errc::malformed_resource;
      out.wildcard = *b;
    }
    out.status = *st;
    out.identifier = std::move(*parsed_id);
    out.expires = std::move(*expires);
    return out;
  });
}

boost::system::result<challenge> parse_challenge(std::string_view body) {
  return guarded(body, [](const json::object& obj) { return challenge_from(obj); });
}

boost::system::result<problem> parse_problem(std::string_view body) {
  return guarded(body, [](const json::object& obj) { return problem_from(obj, true); });
}

}  // namespace mles::acme
