// The web side of the server (issue 3) as a browser or curl sees it, plain and TLS, on the
// same port as the WebSocket: static files per domain, refused ways out of the root, MIME
// types, content negotiation (zstd/br/gzip) and its cache, validators (ETag/Last-Modified,
// 304), ranges (206/416), keep-alive and pipelining, error statuses, timeouts, large files,
// the open-file limit, and WebSocket upgrades next to (and after) HTTP requests.
#include "integration_test.hpp"
#include "support/http_client.hpp"
#include "support/test_certificate.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace mles::test {
namespace {

namespace fs = std::filesystem;
using header_list = std::vector<std::pair<std::string, std::string>>;

constexpr std::size_t bin_size = 300 * 1024;  // 307200
constexpr millis big_timeout{30'000};

// Markers of files a request must never reach.
constexpr std::string_view outside_marker = "OUTSIDE-THE-ROOT-7f3a9c";
constexpr std::string_view wwwroot_marker = "IN-WWWROOT-NOT-IN-DOMAIN-51be";
constexpr std::string_view other_marker = "OTHER-TEST-DOMAIN-INDEX-c0de";

std::string lower(std::string_view s) {
  std::string out{s};
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Comma-separated tokens of a header value, trimmed and lowercased.
std::vector<std::string> tokens(std::string_view value) {
  std::vector<std::string> out;
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    std::string_view t = value.substr(0, comma);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (!t.empty()) out.push_back(lower(t));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

// The media type of a Content-Type value, lowercased, parameters dropped.
std::string media_type(std::string_view content_type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return lower(t);
}

bool has_utf8_charset(std::string_view content_type) {
  std::string v = lower(content_type);
  v.erase(std::remove(v.begin(), v.end(), ' '), v.end());
  return v.find(";charset=utf-8") != std::string::npos;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen{seed};
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xFF);
  return s;
}

// Compressible text with a marker: n lines of varied but repetitive content.
std::string text_lines(std::string_view marker, std::string_view line_prefix, std::size_t n) {
  std::string s{marker};
  s += '\n';
  for (std::size_t i = 0; i < n; ++i) {
    s += line_prefix;
    s += std::to_string(i * 7919 % 1000);
    s += "; /* line ";
    s += std::to_string(i);
    s += " */\n";
  }
  return s;
}

void write_file(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream out{p, std::ios::binary | std::ios::trunc};
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

// A www root for two domains plus files outside each domain's folder that must stay hidden:
//   <tmp>/secret.txt, <tmp>/x, <tmp>/outside/secret.txt   (outside the www root)
//   <tmp>/www/x                                            (inside wwwroot, outside any domain)
//   <tmp>/www/localhost/...                                (the site)
//   <tmp>/www/other.test/index.html                        (the second domain)
struct site {
  temp_dir tmp;
  fs::path www = tmp.path() / "www";
  fs::path root = www / "localhost";

  std::string index = text_lines("<!doctype html><title>LOCALHOST-INDEX</title>", "<p>paragraph ", 120);
  std::string sub_index = text_lines("<!doctype html><title>SUB-INDEX</title>", "<li>item ", 100);
  std::string js = text_lines("// APP-JS", "export const value = ", 300);
  std::string json;
  std::string css = text_lines("/* STYLE-CSS */", ".c { margin: ", 120);
  std::string txt;
  std::string bin = random_bytes(bin_size, 42);
  std::string other_index = text_lines(std::string{"<!doctype html><title>"} + std::string{other_marker} + "</title>",
                                       "<p>other ", 50);

  site() {
    json = "{\"marker\":\"DATA-JSON\",\"items\":[";
    for (int i = 0; i < 200; ++i) json += (i ? "," : "") + std::string{"{\"id\":"} + std::to_string(i) + ",\"name\":\"n\"}";
    json += "]}";
    txt.assign(1024, 'T');
    for (std::size_t i = 0; i < txt.size(); i += 64) txt[i] = '\n';

    write_file(root / "index.html", index);
    write_file(root / "app.js", js);
    write_file(root / "data.json", json);
    write_file(root / "style.css", css);
    write_file(root / "small.txt", txt);
    write_file(root / "blob.bin", bin);
    write_file(root / "sub" / "index.html", sub_index);
    fs::create_directories(root / "emptydir");
    write_file(www / "other.test" / "index.html", other_index);

    const std::string secret = std::string{outside_marker} + "\n";
    write_file(tmp.path() / "secret.txt", secret);
    write_file(tmp.path() / "x", secret);
    write_file(tmp.path() / "outside" / "secret.txt", secret);
    write_file(www / "x", std::string{wwwroot_marker} + "\n");
    write_file(www / "secret.txt", std::string{wwwroot_marker} + "\n");
    fs::create_symlink(tmp.path() / "secret.txt", root / "leak.txt");
    fs::create_symlink(tmp.path() / "outside", root / "outdir");
    fs::create_symlink("../../secret.txt", root / "relleak.txt");
  }
};

// ---------------------------------------------------------------------------------------------
// Assertions

::testing::AssertionResult has_server_header(const http_reply& r) {
  const auto server = r.header("Server");
  if (server && *server == "mles/" MLES_VERSION) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "Server header is '" << server.value_or("(absent)") << "', expected 'mles/"
                                       << MLES_VERSION << "': " << r.describe();
}

// A whole 200 response whose body (after its Content-Encoding) is exactly content.
::testing::AssertionResult serves(const http_reply& r, std::string_view content, int code = 200) {
  if (!r.ok()) return ::testing::AssertionFailure() << "no whole response: " << r.describe();
  if (r.code != code) return ::testing::AssertionFailure() << "status " << r.code << ", expected " << code << ": " << r.describe();
  const auto encoding = r.header("Content-Encoding").value_or("");
  const auto decoded = decode_body(encoding, r.body);
  if (!decoded) return ::testing::AssertionFailure() << "body is not valid '" << encoding << "': " << r.describe();
  if (*decoded != content) {
    std::size_t at = 0;
    while (at < decoded->size() && at < content.size() && (*decoded)[at] == content[at]) ++at;
    return ::testing::AssertionFailure() << "body differs from the file (" << decoded->size() << " bytes vs " << content.size()
                                         << ", first difference at byte " << at << "): " << r.describe();
  }
  return ::testing::AssertionSuccess();
}

// A 4xx whose body holds none of the hidden files' bytes.
::testing::AssertionResult refused_without_leak(const http_reply& r, std::string_view what) {
  if (!r.ok()) return ::testing::AssertionFailure() << what << ": no whole response: " << r.describe();
  for (std::string_view marker : {outside_marker, wwwroot_marker, other_marker, std::string_view{"root:x:0:0"}}) {
    if (r.body.find(marker) != std::string::npos) {
      return ::testing::AssertionFailure() << what << ": LEAKED a hidden file (" << marker << "): " << r.describe();
    }
  }
  if (r.code < 400 || r.code >= 500) return ::testing::AssertionFailure() << what << ": status " << r.code << ", expected 4xx: " << r.describe();
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// Fixture: the server over the site, and HTTP clients for it.

class mles_web : public server_test {
 protected:
  server_fixture& serve(const std::function<void(app::config&)>& more = {}) {
    return start([&](app::config& c) {
      c.wwwroot = web.www;
      c.domains = {"localhost", "other.test"};
      if (more) more(c);
    });
  }

  std::unique_ptr<http_client> client(std::string_view sni = "localhost") {
    auto c = std::make_unique<http_client>();
    connect_options o = srv().client_options();
    o.tls.sni = std::string{sni};
    if (!c->connect(srv().port(), o)) ADD_FAILURE() << "connecting to 127.0.0.1:" << srv().port() << ": " << c->error();
    return c;
  }

  // One request on a fresh connection.
  http_reply request(std::string_view method, std::string_view target, const header_list& headers = {},
                     std::string_view host = "localhost", std::string_view body = {},
                     millis timeout = default_timeout) {
    auto c = client(host == "other.test" ? "other.test" : "localhost");
    return c->exchange(http_request(method, target, host, headers, body), timeout);
  }
  http_reply get(std::string_view target, const header_list& headers = {}, std::string_view host = "localhost") {
    return request("GET", target, headers, host);
  }

  site web;
};
MLES_INSTANTIATE_OVER_TRANSPORTS(mles_web);

// ---------------------------------------------------------------------------------------------
// 1. Routing, HEAD, 404, Host matching, traversal

TEST_P(mles_web, serves_index_html_for_the_root_and_for_a_directory) {
  serve();
  const http_reply root = get("/");
  EXPECT_TRUE(serves(root, web.index));
  EXPECT_TRUE(has_server_header(root));
  EXPECT_TRUE(serves(get("/index.html"), web.index));
  EXPECT_TRUE(serves(get("/sub/"), web.sub_index));
  EXPECT_TRUE(serves(get("/sub/index.html"), web.sub_index));
  EXPECT_TRUE(serves(get("/?query=1&x=y"), web.index)) << "the query is ignored";
  EXPECT_TRUE(serves(get("/app.js"), web.js));
}

TEST_P(mles_web, serves_each_domain_from_its_own_folder) {
  serve();
  EXPECT_TRUE(serves(get("/", {}, "other.test"), web.other_index));
  EXPECT_TRUE(serves(get("/", {}, "localhost"), web.index));
  EXPECT_EQ(get("/app.js", {}, "other.test").code, 404) << "other.test has no app.js";
}

TEST_P(mles_web, head_sends_the_get_headers_without_a_body) {
  serve();
  auto c = client();
  const http_reply g = c->exchange(http_request("GET", "/app.js"));
  ASSERT_TRUE(serves(g, web.js));
  const http_reply h = c->exchange(http_request("HEAD", "/app.js"));
  ASSERT_TRUE(h.ok()) << h.describe();
  EXPECT_EQ(h.code, 200) << h.describe();
  EXPECT_TRUE(has_server_header(h));
  for (const char* name : {"Content-Length", "Content-Type", "ETag", "Last-Modified", "Cache-Control"}) {
    EXPECT_EQ(h.header(name), g.header(name)) << name << "\nGET:  " << g.describe() << "\nHEAD: " << h.describe();
  }
  EXPECT_FALSE(h.header("Content-Encoding").has_value()) << h.describe();
  // Had the HEAD response carried a body, this response would start with it.
  const http_reply after = c->exchange(http_request("GET", "/index.html"));
  EXPECT_TRUE(serves(after, web.index)) << "the response after HEAD is garbled: HEAD sent body bytes?";
  const http_reply root = c->exchange(http_request("HEAD", "/"));
  EXPECT_EQ(root.code, 200) << root.describe();
  EXPECT_EQ(root.header("Content-Length").value_or(""), std::to_string(web.index.size())) << root.describe();
  EXPECT_TRUE(c->stays_silent(200ms)) << "bytes after a HEAD response: " << c->error();
}

TEST_P(mles_web, answers_404_for_missing_files_and_directories_without_index) {
  serve();
  for (const char* target : {"/missing.html", "/sub/missing.js", "/nodir/", "/nodir/file.css", "/emptydir/",
                             "/index.html/", "/sub/index.html/x"}) {
    const http_reply r = get(target);
    ASSERT_TRUE(r.ok()) << target << ": " << r.describe();
    EXPECT_EQ(r.code, 404) << target << ": " << r.describe();
    EXPECT_TRUE(has_server_header(r)) << target;
  }
}

TEST_P(mles_web, answers_404_without_any_file_for_a_host_not_among_the_domains) {
  serve();
  for (const char* host : {"evil.test", "localhost.evil.test", "127.0.0.1", "other.test.evil", "xlocalhost"}) {
    const http_reply r = get("/", {}, host);
    ASSERT_TRUE(r.ok()) << host << ": " << r.describe();
    EXPECT_TRUE(r.code == 404 || r.code == 421) << host << ": " << r.describe();
    EXPECT_EQ(r.body.find("LOCALHOST-INDEX"), std::string::npos) << host << ": the index leaked: " << r.describe();
    EXPECT_EQ(r.body.find(other_marker), std::string::npos) << host << ": other.test leaked: " << r.describe();
    EXPECT_TRUE(has_server_header(r)) << host;
  }
  const http_reply js = get("/app.js", {}, "evil.test");
  EXPECT_TRUE(js.code == 404 || js.code == 421) << js.describe();
  EXPECT_EQ(js.body.find("APP-JS"), std::string::npos) << js.describe();
}

TEST_P(mles_web, refuses_a_request_without_host) {
  serve();
  const http_reply r = request("GET", "/", {}, "");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_GE(r.code, 400) << r.describe();
  EXPECT_LT(r.code, 500) << r.describe();
  EXPECT_EQ(r.body.find("LOCALHOST-INDEX"), std::string::npos) << r.describe();
}

TEST_P(mles_web, matches_the_host_ignoring_port_case_and_a_trailing_dot) {
  serve();
  const std::string with_port = "localhost:" + std::to_string(srv().port());
  for (const std::string& host : {with_port, std::string{"localhost:443"}, std::string{"LOCALHOST"},
                                  std::string{"LocalHost"}, std::string{"localhost."}, std::string{"LOCALHOST.:8443"}}) {
    EXPECT_TRUE(serves(get("/", {}, host), web.index)) << "Host: " << host;
  }
  EXPECT_TRUE(serves(get("/", {}, "OTHER.TEST."), web.other_index));
}

TEST_P(mles_web, refuses_every_way_out_of_the_domain_folder_without_leaking_bytes) {
  serve();
  const char* targets[] = {
      "/../x",
      "/../../x",
      "/../secret.txt",
      "/../../secret.txt",
      "/./../x",
      "/sub/../../x",
      "/sub/../../../x",
      "/%2e%2e/x",
      "/%2E%2E/x",
      "/%2e%2e/%2e%2e/x",
      "/.%2e/x",
      "/%2e./x",
      "/%2e%2e%2fx",
      "/%2e%2e%2f%2e%2e%2fx",
      "/..%2fx",
      "/..%2f..%2fsecret.txt",
      "/a%2fb",
      "/sub%2findex.html",
      "/..%5c",
      "/..%5cx",
      "/..%5c..%5cx",
      "/..\\x",
      "/..\\..\\x",
      "/sub\\..\\..\\x",
      "/%00",
      "/index.html%00",
      "/index.html%00.txt",
      "/..%00/x",
      "/%zz",
      "/%2",
      "/../other.test/index.html",
      "/%2e%2e/other.test/index.html",
      "/..%2fother.test%2findex.html",
      "/../../../../../../../../etc/passwd",
      "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "/leak.txt",
      "/relleak.txt",
      "/outdir/secret.txt",
      "/outdir/",
      "http://localhost/../x",
      "http://localhost/%2e%2e/x",
      "http://localhost/../../secret.txt",
      "http://evil.test/../x",
      "x/../../secret.txt",
      "../secret.txt",
      "*",
  };
  for (const char* target : targets) {
    EXPECT_TRUE(refused_without_leak(get(target), target));
  }
  // Percent-encoding is decoded once: "%252e%252e" is the literal name "%2e%2e", not "..".
  EXPECT_TRUE(refused_without_leak(get("/%252e%252e/x"), "/%252e%252e/x"));
  // The server still serves normally afterwards.
  EXPECT_TRUE(serves(get("/"), web.index));
}

// ---------------------------------------------------------------------------------------------
// 2. Content-Type and headers

TEST_P(mles_web, labels_each_file_with_its_content_type) {
  serve();
  const http_reply html = get("/index.html");
  EXPECT_EQ(lower(html.header("Content-Type").value_or("")), "text/html; charset=utf-8") << html.describe();

  const http_reply js = get("/app.js");
  const std::string js_type = media_type(js.header("Content-Type").value_or(""));
  EXPECT_TRUE(js_type == "text/javascript" || js_type == "application/javascript") << js.describe();
  EXPECT_TRUE(has_utf8_charset(js.header("Content-Type").value_or(""))) << js.describe();

  const http_reply json = get("/data.json");
  EXPECT_EQ(media_type(json.header("Content-Type").value_or("")), "application/json") << json.describe();

  const http_reply css = get("/style.css");
  EXPECT_EQ(media_type(css.header("Content-Type").value_or("")), "text/css") << css.describe();
  EXPECT_TRUE(has_utf8_charset(css.header("Content-Type").value_or(""))) << css.describe();

  const http_reply txt = get("/small.txt");
  EXPECT_EQ(media_type(txt.header("Content-Type").value_or("")), "text/plain") << txt.describe();
  EXPECT_TRUE(has_utf8_charset(txt.header("Content-Type").value_or(""))) << txt.describe();

  const http_reply bin = get("/blob.bin");
  EXPECT_EQ(lower(bin.header("Content-Type").value_or("")), "application/octet-stream") << bin.describe();
  EXPECT_TRUE(serves(bin, web.bin));
}

TEST_P(mles_web, labels_other_common_web_types) {
  const struct {
    const char* file;
    const char* type;
  } cases[] = {
      {"m.mjs", "text/javascript"},  {"i.svg", "image/svg+xml"}, {"w.wasm", "application/wasm"},
      {"p.png", "image/png"},        {"j.jpg", "image/jpeg"},    {"f.woff2", "font/woff2"},
      {"a.map", "application/json"}, {"d.xml", "application/xml"}, {"v.mp4", "video/mp4"},
      {"x.unknownext", "application/octet-stream"}, {"noext", "application/octet-stream"},
  };
  for (const auto& c : cases) write_file(web.root / "types" / c.file, std::string{"content of "} + c.file);
  serve();
  for (const auto& c : cases) {
    const http_reply r = get(std::string{"/types/"} + c.file);
    EXPECT_TRUE(serves(r, std::string{"content of "} + c.file)) << c.file;
    EXPECT_EQ(media_type(r.header("Content-Type").value_or("")), c.type) << c.file << ": " << r.describe();
  }
}

TEST_P(mles_web, json_allows_any_origin_and_html_forbids_sniffing) {
  serve();
  const http_reply json = get("/data.json");
  EXPECT_EQ(json.header("Access-Control-Allow-Origin").value_or("(absent)"), "*") << json.describe();
  const http_reply html = get("/");
  EXPECT_EQ(lower(html.header("X-Content-Type-Options").value_or("(absent)")), "nosniff") << html.describe();
  const http_reply sub = get("/sub/");
  EXPECT_EQ(lower(sub.header("X-Content-Type-Options").value_or("(absent)")), "nosniff") << sub.describe();
}

TEST_P(mles_web, every_response_carries_the_server_header) {
  serve();
  EXPECT_TRUE(has_server_header(get("/")));
  EXPECT_TRUE(has_server_header(get("/app.js", {{"Accept-Encoding", "zstd"}})));
  EXPECT_TRUE(has_server_header(get("/missing")));
  EXPECT_TRUE(has_server_header(get("/", {}, "evil.test")));
  EXPECT_TRUE(has_server_header(get("/../x")));
  EXPECT_TRUE(has_server_header(request("POST", "/", {{"Content-Length", "0"}})));
  EXPECT_TRUE(has_server_header(request("HEAD", "/")));
  EXPECT_TRUE(has_server_header(get("/blob.bin", {{"Range", "bytes=0-9"}})));
  EXPECT_TRUE(has_server_header(get("/blob.bin", {{"Range", "bytes=999999-"}})));
  const http_reply first = get("/style.css");
  EXPECT_TRUE(has_server_header(get("/style.css", {{"If-None-Match", first.header("ETag").value_or("\"x\"")}})));
}

// ---------------------------------------------------------------------------------------------
// 3. Compression

TEST_P(mles_web, prefers_zstd_then_brotli_then_gzip_as_accept_encoding_allows) {
  serve();
  const struct {
    const char* accept;
    const char* expected;  // "" = no Content-Encoding
  } cases[] = {
      {"zstd, br, gzip", "zstd"},
      {"gzip, br, zstd", "zstd"},
      {"br;q=1, zstd;q=0", "br"},
      {"br, gzip", "br"},
      {"gzip", "gzip"},
      {"gzip;q=0.5, identity;q=1", "gzip"},
      {"zstd;q=0, br;q=0, gzip;q=0", ""},
      {"identity", ""},
      {"", ""},
  };
  for (const auto& c : cases) {
    header_list h;
    if (*c.accept != '\0') h.emplace_back("Accept-Encoding", c.accept);
    const http_reply r = get("/app.js", h);
    EXPECT_TRUE(serves(r, web.js)) << "Accept-Encoding: " << c.accept;
    const std::string got = lower(r.header("Content-Encoding").value_or(""));
    if (*c.expected == '\0') {
      EXPECT_TRUE(got.empty() || got == "identity") << "Accept-Encoding: " << c.accept << ": " << r.describe();
    } else {
      EXPECT_EQ(got, c.expected) << "Accept-Encoding: " << c.accept << ": " << r.describe();
      EXPECT_LT(r.body.size(), web.js.size()) << "not smaller: " << r.describe();
    }
    const auto vary = tokens(r.header("Vary").value_or(""));
    EXPECT_NE(std::find(vary.begin(), vary.end(), "accept-encoding"), vary.end())
        << "Accept-Encoding: " << c.accept << ": " << r.describe();
  }
}

TEST_P(mles_web, compresses_every_text_like_type_and_decodes_to_the_file) {
  serve();
  const struct {
    const char* target;
    const std::string* content;
  } cases[] = {{"/", &web.index}, {"/style.css", &web.css}, {"/data.json", &web.json}, {"/app.js", &web.js}};
  for (const char* enc : {"zstd", "br", "gzip"}) {
    for (const auto& c : cases) {
      const http_reply r = get(c.target, {{"Accept-Encoding", enc}});
      EXPECT_TRUE(serves(r, *c.content)) << c.target << " " << enc;
      EXPECT_EQ(lower(r.header("Content-Encoding").value_or("(absent)")), enc) << c.target << ": " << r.describe();
    }
    EXPECT_TRUE(serves(get("/small.txt", {{"Accept-Encoding", enc}}), web.txt)) << enc;
  }
}

TEST_P(mles_web, never_compresses_a_binary_file) {
  serve();
  for (const char* accept : {"zstd, br, gzip", "gzip", "br", "*"}) {
    const http_reply r = get("/blob.bin", {{"Accept-Encoding", accept}});
    EXPECT_TRUE(serves(r, web.bin)) << accept;
    EXPECT_FALSE(r.header("Content-Encoding").has_value()) << accept << ": " << r.describe();
    EXPECT_EQ(r.body.size(), bin_size) << accept;
  }
}

TEST_P(mles_web, serves_the_new_content_after_the_file_changes) {
  serve();
  const fs::path file = web.root / "app.js";
  for (const char* enc : {"zstd", "br", "gzip", "identity"}) {
    ASSERT_TRUE(serves(get("/app.js", {{"Accept-Encoding", enc}}), web.js)) << enc;
  }
  const std::string etag_before = get("/app.js").header("ETag").value_or("");

  // Same size, different bytes, mtime moved forward: only the content and mtime tell.
  std::string changed = web.js;
  std::replace(changed.begin(), changed.end(), 'e', 'E');
  ASSERT_NE(changed, web.js);
  ASSERT_EQ(changed.size(), web.js.size());
  const auto old_time = fs::last_write_time(file);
  write_file(file, changed);
  fs::last_write_time(file, old_time + std::chrono::seconds{10});

  for (const char* enc : {"zstd", "br", "gzip", "identity"}) {
    EXPECT_TRUE(serves(get("/app.js", {{"Accept-Encoding", enc}}), changed)) << enc << ": stale content after the change";
  }
  const http_reply after = get("/app.js");
  EXPECT_NE(after.header("ETag").value_or(""), etag_before) << "ETag unchanged: " << after.describe();

  // And a second change in the other direction (mtime forward again).
  write_file(file, web.js);
  fs::last_write_time(file, old_time + std::chrono::seconds{20});
  EXPECT_TRUE(serves(get("/app.js", {{"Accept-Encoding", "zstd"}}), web.js));
}

TEST_P(mles_web, compresses_without_a_cache_when_the_cache_size_is_zero) {
  serve([](app::config& c) { c.compression_cache_mb = 0; });
  for (int i = 0; i < 3; ++i) {
    for (const char* enc : {"zstd", "br", "gzip"}) {
      const http_reply r = get("/app.js", {{"Accept-Encoding", enc}});
      EXPECT_TRUE(serves(r, web.js)) << enc << " #" << i;
      EXPECT_EQ(lower(r.header("Content-Encoding").value_or("(absent)")), enc) << r.describe();
    }
  }
  std::string changed = web.js;
  std::replace(changed.begin(), changed.end(), 'a', 'A');
  const fs::path file = web.root / "app.js";
  const auto old_time = fs::last_write_time(file);
  write_file(file, changed);
  fs::last_write_time(file, old_time + std::chrono::seconds{10});
  EXPECT_TRUE(serves(get("/app.js", {{"Accept-Encoding", "zstd"}}), changed));
}

// ---------------------------------------------------------------------------------------------
// 4. Validators and caching headers

TEST_P(mles_web, answers_304_to_if_none_match_and_if_modified_since) {
  serve();
  auto c = client();
  const http_reply first = c->exchange(http_request("GET", "/app.js"));
  ASSERT_TRUE(serves(first, web.js));
  const auto etag = first.header("ETag");
  const auto last_modified = first.header("Last-Modified");
  ASSERT_TRUE(etag.has_value()) << first.describe();
  ASSERT_TRUE(last_modified.has_value()) << first.describe();
  EXPECT_TRUE(last_modified->ends_with(" GMT")) << *last_modified;

  const http_reply by_tag = c->exchange(http_request("GET", "/app.js", "localhost", {{"If-None-Match", *etag}}));
  ASSERT_TRUE(by_tag.ok()) << by_tag.describe();
  EXPECT_EQ(by_tag.code, 304) << by_tag.describe();
  EXPECT_TRUE(has_server_header(by_tag));
  EXPECT_EQ(by_tag.header("ETag"), etag) << by_tag.describe();

  const http_reply by_date =
      c->exchange(http_request("GET", "/app.js", "localhost", {{"If-Modified-Since", *last_modified}}));
  ASSERT_TRUE(by_date.ok()) << by_date.describe();
  EXPECT_EQ(by_date.code, 304) << by_date.describe();

  const http_reply head = c->exchange(http_request("HEAD", "/app.js", "localhost", {{"If-None-Match", *etag}}));
  EXPECT_EQ(head.code, 304) << head.describe();

  // A 304 carries no body: the next response on the connection parses cleanly.
  EXPECT_TRUE(serves(c->exchange(http_request("GET", "/index.html")), web.index)) << "a 304 sent body bytes?";

  EXPECT_EQ(c->exchange(http_request("GET", "/app.js", "localhost", {{"If-None-Match", "\"not-the-tag\""}})).code, 200);
  EXPECT_EQ(c->exchange(http_request("GET", "/app.js", "localhost",
                                     {{"If-Modified-Since", "Thu, 01 Jan 1998 00:00:00 GMT"}}))
                .code,
            200);
  // If-None-Match decides when both are present.
  EXPECT_EQ(c->exchange(http_request("GET", "/app.js", "localhost",
                                     {{"If-None-Match", "\"not-the-tag\""}, {"If-Modified-Since", *last_modified}}))
                .code,
            200);
}

TEST_P(mles_web, answers_304_for_a_compressed_representation_by_its_own_etag) {
  serve();
  auto c = client();
  const header_list zstd{{"Accept-Encoding", "zstd"}};
  const http_reply first = c->exchange(http_request("GET", "/app.js", "localhost", zstd));
  ASSERT_TRUE(serves(first, web.js));
  const auto etag = first.header("ETag");
  ASSERT_TRUE(etag.has_value()) << first.describe();
  const http_reply again =
      c->exchange(http_request("GET", "/app.js", "localhost", {{"Accept-Encoding", "zstd"}, {"If-None-Match", *etag}}));
  EXPECT_EQ(again.code, 304) << again.describe();
}

TEST_P(mles_web, sends_validators_and_cache_control_short_for_html_long_for_assets) {
  serve();
  const http_reply html = get("/");
  EXPECT_TRUE(html.header("ETag").has_value()) << html.describe();
  EXPECT_TRUE(html.header("Last-Modified").has_value()) << html.describe();
  const auto html_cc = tokens(html.header("Cache-Control").value_or(""));
  EXPECT_NE(std::find(html_cc.begin(), html_cc.end(), "no-cache"), html_cc.end()) << html.describe();

  for (const char* target : {"/app.js", "/style.css", "/blob.bin", "/data.json"}) {
    const http_reply r = get(target);
    EXPECT_TRUE(r.header("ETag").has_value()) << target << ": " << r.describe();
    EXPECT_TRUE(r.header("Last-Modified").has_value()) << target << ": " << r.describe();
    EXPECT_NE(lower(r.header("Cache-Control").value_or("")).find("max-age"), std::string::npos)
        << target << ": " << r.describe();
  }
}

// ---------------------------------------------------------------------------------------------
// 5. Ranges

TEST_P(mles_web, serves_single_byte_ranges_with_206_and_refuses_unsatisfiable_ones_with_416) {
  serve();
  auto c = client();
  const std::string total = "/" + std::to_string(bin_size);

  const http_reply head = c->exchange(http_request("GET", "/blob.bin", "localhost", {{"Range", "bytes=0-99"}}));
  ASSERT_TRUE(head.ok()) << head.describe();
  EXPECT_EQ(head.code, 206) << head.describe();
  EXPECT_EQ(head.header("Content-Range").value_or("(absent)"), "bytes 0-99" + total) << head.describe();
  EXPECT_EQ(head.body, web.bin.substr(0, 100));

  const http_reply tail = c->exchange(http_request("GET", "/blob.bin", "localhost", {{"Range", "bytes=-10"}}));
  ASSERT_TRUE(tail.ok()) << tail.describe();
  EXPECT_EQ(tail.code, 206) << tail.describe();
  EXPECT_EQ(tail.header("Content-Range").value_or("(absent)"),
            "bytes " + std::to_string(bin_size - 10) + "-" + std::to_string(bin_size - 1) + total)
      << tail.describe();
  EXPECT_EQ(tail.body, web.bin.substr(bin_size - 10));

  const http_reply middle = c->exchange(http_request("GET", "/blob.bin", "localhost", {{"Range", "bytes=1000-"}}));
  ASSERT_TRUE(middle.ok()) << middle.describe();
  EXPECT_EQ(middle.code, 206) << middle.describe();
  EXPECT_EQ(middle.header("Content-Range").value_or("(absent)"),
            "bytes 1000-" + std::to_string(bin_size - 1) + total)
      << middle.describe();
  EXPECT_TRUE(middle.body == web.bin.substr(1000)) << middle.body.size() << " bytes";

  const http_reply beyond = c->exchange(http_request("GET", "/blob.bin", "localhost", {{"Range", "bytes=999999-"}}));
  ASSERT_TRUE(beyond.ok()) << beyond.describe();
  EXPECT_EQ(beyond.code, 416) << beyond.describe();
  EXPECT_EQ(beyond.header("Content-Range").value_or("(absent)"), "bytes */" + std::to_string(bin_size))
      << beyond.describe();
  EXPECT_EQ(beyond.body.find(web.bin.substr(0, 64)), std::string::npos) << "416 carried file bytes";

  // The connection is still in step after all of them.
  EXPECT_TRUE(serves(c->exchange(http_request("GET", "/index.html")), web.index));
}

// ---------------------------------------------------------------------------------------------
// 6. Connections

TEST_P(mles_web, keeps_the_connection_alive_between_requests) {
  serve();
  auto c = client();
  const http_reply a = c->exchange(http_request("GET", "/"));
  EXPECT_TRUE(serves(a, web.index));
  EXPECT_NE(lower(a.header("Connection").value_or("")), "close") << a.describe();
  const http_reply b = c->exchange(http_request("GET", "/app.js"));
  EXPECT_TRUE(serves(b, web.js)) << "second request on the same connection";
  const http_reply n = c->exchange(http_request("GET", "/missing"));
  EXPECT_EQ(n.code, 404) << n.describe();
  EXPECT_TRUE(serves(c->exchange(http_request("GET", "/data.json")), web.json)) << "a 404 ended the connection?";
}

TEST_P(mles_web, answers_pipelined_requests_in_order) {
  serve();
  auto c = client();
  ASSERT_TRUE(c->send(http_request("GET", "/") + http_request("GET", "/app.js") + http_request("GET", "/data.json")))
      << c->error();
  EXPECT_TRUE(serves(c->read_response(), web.index)) << "first pipelined response";
  EXPECT_TRUE(serves(c->read_response(), web.js)) << "second pipelined response";
  EXPECT_TRUE(serves(c->read_response(), web.json)) << "third pipelined response";

  // Mixed: HEAD, 404, compressed, range in one write.
  ASSERT_TRUE(c->send(http_request("HEAD", "/style.css") + http_request("GET", "/nothing") +
                      http_request("GET", "/style.css", "localhost", {{"Accept-Encoding", "br"}}) +
                      http_request("GET", "/blob.bin", "localhost", {{"Range", "bytes=0-9"}})));
  const http_reply h = c->read_response(true);
  EXPECT_EQ(h.code, 200) << h.describe();
  EXPECT_EQ(c->read_response().code, 404);
  EXPECT_TRUE(serves(c->read_response(), web.css));
  const http_reply r = c->read_response();
  EXPECT_EQ(r.code, 206) << r.describe();
  EXPECT_EQ(r.body, web.bin.substr(0, 10));
}

TEST_P(mles_web, closes_after_the_response_when_asked_to) {
  serve();
  auto c = client();
  const http_reply r = c->exchange(http_request("GET", "/", "localhost", {{"Connection", "close"}}));
  EXPECT_TRUE(serves(r, web.index));
  EXPECT_TRUE(c->wait_closed(2000ms)) << c->error();
  EXPECT_EQ(c->extra_bytes(), 0u);

  auto old = client();
  ASSERT_TRUE(old->send("GET /app.js HTTP/1.0\r\nHost: localhost\r\n\r\n"));
  EXPECT_TRUE(serves(old->read_response(), web.js)) << "HTTP/1.0";
  EXPECT_TRUE(old->wait_closed(2000ms)) << "HTTP/1.0 without keep-alive: " << old->error();
}

// ---------------------------------------------------------------------------------------------
// 7. Errors and timeouts

TEST_P(mles_web, answers_405_with_allow_to_other_methods) {
  serve();
  const struct {
    const char* method;
    const char* target;
    std::string_view body;
  } cases[] = {{"POST", "/", "a=b"}, {"POST", "/app.js", ""}, {"PUT", "/new.txt", "data"},
               {"DELETE", "/index.html", ""}, {"PATCH", "/", "x"}};
  for (const auto& m : cases) {
    const http_reply r =
        request(m.method, m.target, {{"Content-Length", std::to_string(m.body.size())}}, "localhost", m.body);
    ASSERT_TRUE(r.ok()) << m.method << ": " << r.describe();
    EXPECT_EQ(r.code, 405) << m.method << " " << m.target << ": " << r.describe();
    auto allow = tokens(r.header("Allow").value_or(""));
    std::sort(allow.begin(), allow.end());
    EXPECT_EQ(allow, (std::vector<std::string>{"get", "head"})) << m.method << ": " << r.describe();
    EXPECT_TRUE(has_server_header(r));
  }
  EXPECT_TRUE(fs::exists(web.root / "index.html")) << "DELETE removed a file!";
  EXPECT_FALSE(fs::exists(web.root / "new.txt")) << "PUT created a file!";
}

TEST_P(mles_web, answers_400_to_malformed_requests) {
  serve();
  const char* requests[] = {
      "GET /index.html\r\nHost: localhost\r\n\r\n",
      "GET /index.html HTTP/1.1 extra\r\nHost: localhost\r\n\r\n",
      "GET / HTTP/1.1\r\nHost localhost\r\n\r\n",
      "GET / HTTX/1.1\r\nHost: localhost\r\n\r\n",
      "\x01\x02\x03 / HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
  };
  for (const char* req : requests) {
    auto c = client();
    ASSERT_TRUE(c->send(req)) << c->error();
    const http_reply r = c->read_response();
    ASSERT_TRUE(r.ok()) << shorten(req) << ": " << r.describe();
    EXPECT_EQ(r.code, 400) << shorten(req) << ": " << r.describe();
    EXPECT_EQ(r.body.find("LOCALHOST-INDEX"), std::string::npos) << shorten(req);
  }
  EXPECT_TRUE(serves(get("/"), web.index));
}

TEST_P(mles_web, answers_431_to_oversized_request_headers) {
  serve();
  {
    auto c = client();
    c->send(http_request("GET", "/", "localhost", {{"X-Filler", std::string(20 * 1024, 'a')}}));
    const http_reply r = c->read_response();
    ASSERT_TRUE(r.ok()) << "one 20 KiB header: " << r.describe();
    EXPECT_EQ(r.code, 431) << r.describe();
  }
  {
    header_list many;
    for (int i = 0; i < 100; ++i) many.emplace_back("X-H" + std::to_string(i), std::string(200, 'b'));
    auto c = client();
    c->send(http_request("GET", "/", "localhost", many));
    const http_reply r = c->read_response();
    ASSERT_TRUE(r.ok()) << "100 headers of 200 bytes: " << r.describe();
    EXPECT_EQ(r.code, 431) << r.describe();
  }
  // Headers a little under 16 KiB are fine.
  EXPECT_TRUE(serves(get("/", {{"X-Filler", std::string(8 * 1024, 'c')}}), web.index));
}

// The timeout also bounds the TLS handshake and the first request: long enough (2 s) that a
// sanitizer build on a busy box gets them done, with generous waits for the close.
TEST_P(mles_web, closes_an_idle_keep_alive_connection_after_the_idle_timeout) {
  serve([](app::config& c) { c.handshake_timeout = 2000ms; });
  auto c = client();
  ASSERT_TRUE(c->connected());
  EXPECT_TRUE(serves(c->exchange(http_request("GET", "/")), web.index));
  const auto t0 = steady::now();
  EXPECT_TRUE(c->wait_closed(30000ms)) << "idle keep-alive connection still open: " << c->error();
  EXPECT_EQ(c->extra_bytes(), 0u) << "bytes after the response on an idle connection";
  EXPECT_GE(steady::now() - t0, 100ms) << "closed at once: no keep-alive at all?";
}

TEST_P(mles_web, closes_a_connection_whose_request_head_never_completes) {
  serve([](app::config& c) { c.handshake_timeout = 2000ms; });
  auto c = client();
  ASSERT_TRUE(c->connected());
  ASSERT_TRUE(c->send("GET / HTTP/1.1\r\nHost: loc"));
  EXPECT_TRUE(c->wait_closed(30000ms)) << "a slow client holds the connection: " << c->error();

  // A connection sending a byte now and then still times out on the whole head.
  auto slow = client();
  ASSERT_TRUE(slow->connected());
  const auto t0 = steady::now();
  bool closed = false;
  for (const char ch : std::string{"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    if (!slow->send(std::string(1, ch))) {
      closed = true;
      break;
    }
    if (!slow->stays_silent(50ms)) {
      closed = true;
      break;
    }
  }
  if (!closed) closed = slow->wait_closed(30000ms);
  EXPECT_TRUE(closed) << "a byte-at-a-time client kept the connection for "
                      << std::chrono::duration_cast<millis>(steady::now() - t0).count() << " ms";
}

// ---------------------------------------------------------------------------------------------
// 8, 9. Large files and the open-file limit

TEST_P(mles_web, streams_a_large_file_completely) {
  const std::string big = random_bytes(5u << 20, 7);
  write_file(web.root / "big.bin", big);
  serve();
  auto c = client();
  const http_reply r = c->exchange(http_request("GET", "/big.bin"), big_timeout);
  EXPECT_TRUE(serves(r, big));
  EXPECT_EQ(r.header("Content-Length").value_or(""), std::to_string(big.size())) << r.describe();
  // And the connection is still usable after it.
  EXPECT_TRUE(serves(c->exchange(http_request("GET", "/")), web.index));
  const http_reply tail = c->exchange(http_request("GET", "/big.bin", "localhost", {{"Range", "bytes=-100000"}}));
  EXPECT_EQ(tail.code, 206) << tail.describe();
  EXPECT_TRUE(tail.body == big.substr(big.size() - 100000)) << tail.describe();
}

TEST_P(mles_web, serves_a_large_text_file_compressed_completely) {
  const std::string big = text_lines("BIG-TEXT", "const data = ", 150'000);  // about 4.5 MiB
  write_file(web.root / "big.js", big);
  serve();
  for (const char* enc : {"zstd", "gzip"}) {
    auto c = client();
    const http_reply r = c->exchange(http_request("GET", "/big.js", "localhost", {{"Accept-Encoding", enc}}), big_timeout);
    EXPECT_TRUE(serves(r, big)) << enc;
    EXPECT_EQ(lower(r.header("Content-Encoding").value_or("(absent)")), enc) << r.describe();
  }
}

TEST_P(mles_web, waits_rather_than_fails_when_more_files_are_requested_than_the_file_limit) {
  const std::string big = random_bytes(3u << 20, 9);
  write_file(web.root / "big.bin", big);
  serve([](app::config& c) { c.file_limit = 1; });
  constexpr int n = 4;
  std::vector<std::unique_ptr<http_client>> clients;
  for (int i = 0; i < n; ++i) clients.push_back(client());
  for (auto& c : clients) ASSERT_TRUE(c->send(http_request("GET", "/big.bin"))) << c->error();
  std::vector<http_reply> replies(n);
  std::vector<std::thread> readers;
  for (int i = 0; i < n; ++i) {
    readers.emplace_back([&, i] { replies[static_cast<std::size_t>(i)] = clients[static_cast<std::size_t>(i)]->read_response(false, big_timeout); });
  }
  for (auto& t : readers) t.join();
  for (int i = 0; i < n; ++i) EXPECT_TRUE(serves(replies[static_cast<std::size_t>(i)], big)) << "request " << i;
  // And small files after them.
  EXPECT_TRUE(serves(get("/"), web.index));
}

// ---------------------------------------------------------------------------------------------
// 10. WebSocket on the same port

std::string upgrade_request() {
  return "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Protocol: mles-websocket\r\n\r\n";
}

TEST_P(mles_web, upgrades_websockets_on_the_same_port_after_http_requests) {
  auto& s = serve();
  auto idle = client();
  EXPECT_TRUE(serves(idle->exchange(http_request("GET", "/")), web.index));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(serves(get("/app.js", {{"Accept-Encoding", "zstd"}}), web.js));

  auto a = s.join_first("alice", "web");
  ASSERT_TRUE(a->sync()) << a->error();
  auto b = s.join("bob", "web");
  ASSERT_TRUE(b->sync()) << b->error();
  ASSERT_TRUE(receives_text(*b, ws_client::join_text("alice", "web")));
  ASSERT_TRUE(b->send_text("hello over the web port"));
  EXPECT_TRUE(receives_text(*a, "hello over the web port"));
  // HTTP keeps working alongside.
  EXPECT_TRUE(serves(idle->exchange(http_request("GET", "/data.json")), web.json));
}

TEST_P(mles_web, accepts_an_upgrade_as_the_second_request_of_a_keep_alive_connection) {
  serve();
  auto c = client();
  ASSERT_TRUE(serves(c->exchange(http_request("GET", "/")), web.index));
  const http_reply up = c->exchange(upgrade_request());
  ASSERT_TRUE(up.ok()) << up.describe();
  ASSERT_EQ(up.code, 101) << up.describe();
  EXPECT_EQ(up.header("Sec-WebSocket-Accept").value_or(""), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") << up.describe();
  EXPECT_EQ(up.header("Sec-WebSocket-Protocol").value_or(""), "mles-websocket") << up.describe();

  ASSERT_TRUE(c->send(encode_frame(frame_spec{.opcode = op::text, .payload = ws_client::join_text("u", "ka")}) +
                      encode_frame(frame_spec{.opcode = op::ping, .payload = "after-http"})));
  std::optional<std::pair<std::uint8_t, std::string>> f;
  for (int i = 0; i < 10; ++i) {
    f = c->read_ws_frame();
    if (!f || f->first == op::pong || f->first == op::close) break;
  }
  ASSERT_TRUE(f.has_value()) << "no frame after the upgrade: " << c->error();
  EXPECT_EQ(f->first, op::pong) << "opcode " << int{f->first} << " '" << shorten(f->second) << "'";
  EXPECT_EQ(f->second, "after-http");
}

}  // namespace
}  // namespace mles::test
