// TLS 1.3 record protection of our own (RFC 8446 §5), used after OpenSSL has finished a TLS
// 1.3 handshake: the server then frees OpenSSL's SSL object (7.6 KB and more per connection)
// and protects application records itself, keeping only keys, IVs and sequence numbers.
// It also lets a burst of frames be encrypted straight into the send buffer, one pass, with
// no copy in or out of OpenSSL's record buffers. The AEADs (AES-128/256-GCM,
// ChaCha20-Poly1305) and HKDF are OpenSSL's (EVP); only the framing is ours.
//
// What it handles after the handshake: application_data, alerts (close_notify = end of
// stream; any other alert ends the connection), KeyUpdate (answered when the peer asks for it;
// our own key is updated before the AES-GCM record limit), record padding, the record size
// limits. Any other post-handshake handshake message is a protocol error on the server; a
// client ignores NewSessionTicket.
//
// data path: ciphertext ─► open() ─► plaintext (in place) ;  plaintext ─► seal() ─► records
// Thread-safety: none; one per connection, used on its loop.
#pragma once

#include "net/byte_buffer.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct evp_cipher_ctx_st;

namespace mles::net::tls13 {

// The TLS 1.3 cipher suites this layer implements (RFC 8446 §B.4).
enum class suite : std::uint8_t { aes_128_gcm_sha256, aes_256_gcm_sha384, chacha20_poly1305_sha256 };

// From the IANA id (0x1301, 0x1302, 0x1303); nullopt for any other suite.
std::optional<suite> suite_from_id(std::uint16_t id) noexcept;
std::size_t hash_length(suite s) noexcept;  // 32 or 48
std::size_t key_length(suite s) noexcept;   // 16 or 32
constexpr std::size_t iv_length = 12;
constexpr std::size_t tag_length = 16;
constexpr std::size_t header_length = 5;
constexpr std::size_t max_plaintext = 16384;                           // 2^14
constexpr std::size_t max_ciphertext = max_plaintext + 256;            // 2^14 + 256
constexpr std::size_t max_record = header_length + max_ciphertext;

// HKDF-Expand-Label(secret, label, context, length) of RFC 8446 §7.1 with the suite's hash
// ("tls13 " is prepended to label here). Throws std::runtime_error if OpenSSL fails.
std::vector<std::uint8_t> expand_label(suite s, std::span<const std::uint8_t> secret, std::string_view label,
                                       std::span<const std::uint8_t> context, std::size_t length);

// One direction's traffic keys (RFC 8446 §7.3) and record sequence number.
struct traffic_keys {
  std::array<std::uint8_t, 48> secret{};  // hash_length bytes used
  std::array<std::uint8_t, 32> key{};     // key_length bytes used
  std::array<std::uint8_t, iv_length> iv{};
  std::uint64_t seq = 0;
  // secret → key, iv; seq = 0.
  void derive(suite s, std::span<const std::uint8_t> traffic_secret);
  // KeyUpdate: secret = HKDF-Expand-Label(secret, "traffic upd", "", Hash.length), then derive.
  void update(suite s);
  // The per-record nonce: iv XOR the 64-bit big-endian sequence number, left-padded.
  std::array<std::uint8_t, iv_length> nonce() const noexcept;
};

// The TLS 1.3 application traffic secrets of a handshake, as OpenSSL's key-log callback
// (SSL_CTX_set_keylog_callback) hands them over: what a record_layer is made from.
struct application_secrets {
  std::array<std::uint8_t, 48> client{};  // CLIENT_TRAFFIC_SECRET_0
  std::array<std::uint8_t, 48> server{};  // SERVER_TRAFFIC_SECRET_0
  std::size_t client_len = 0;
  std::size_t server_len = 0;
  application_secrets() = default;
  application_secrets(const application_secrets&) = delete;
  application_secrets& operator=(const application_secrets&) = delete;
  ~application_secrets();
  // One key-log line ("<label> <client random hex> <secret hex>"): kept if it is one of the
  // two application secrets, ignored otherwise (handshake secrets, malformed lines).
  void take_keylog_line(std::string_view line) noexcept;
  // Both secrets are there, of the suite's hash length.
  bool complete_for(suite s) const noexcept;
  std::span<const std::uint8_t> client_secret() const noexcept { return {client.data(), client_len}; }
  std::span<const std::uint8_t> server_secret() const noexcept { return {server.data(), server_len}; }
};

// TLS alert descriptions this layer sends or names (RFC 8446 §6).
enum class alert : std::uint8_t {
  close_notify = 0,
  unexpected_message = 10,
  bad_record_mac = 20,
  record_overflow = 22,
  illegal_parameter = 47,
  decode_error = 50,
  internal_error = 80,
};
std::string_view alert_name(std::uint8_t description) noexcept;

enum class role : std::uint8_t { server, client };

// Record protection for one connection, both directions.
class record_layer {
 public:
  // client_secret / server_secret: the *_application_traffic_secret_0 of the handshake.
  // write_seq: records already sent under the server's (our, as server) key, e.g. session
  // tickets OpenSSL sent before the switch; read_seq likewise for the peer's key.
  record_layer(suite s, role r, std::span<const std::uint8_t> client_secret,
               std::span<const std::uint8_t> server_secret, std::uint64_t write_seq = 0,
               std::uint64_t read_seq = 0);
  ~record_layer();
  record_layer(const record_layer&) = delete;
  record_layer& operator=(const record_layer&) = delete;

  suite cipher_suite() const noexcept { return suite_; }

  // ---- sending
  // Appends plaintext as protected application_data records (at most max_plaintext bytes
  // each) to out. Before the AES-GCM per-key record limit is reached, a KeyUpdate is sent
  // first and our key rotated.
  void seal(std::span<const std::uint8_t> plaintext, byte_buffer& out);
  // Appends one protected alert record (level: 1 warning for close_notify, 2 fatal otherwise).
  void seal_alert(alert a, byte_buffer& out);
  // Bytes seal() adds to n bytes of plaintext.
  static std::size_t sealed_size(std::size_t n) noexcept;

  // ---- receiving
  enum class status : std::uint8_t {
    ok,           // consumed bytes used; plaintext (possibly none) written
    closed,       // close_notify received: end of stream (anything after it is ignored)
    error,        // protocol error: what() says; an alert to send is in out (if any)
  };
  struct open_result {
    status st = status::ok;
    std::size_t consumed = 0;   // ciphertext bytes used (whole records only)
    std::size_t plaintext = 0;  // application bytes written at the start of buf
  };
  // Opens every complete record at the start of buf, in place: the application data of all
  // of them is moved to the front of buf (plaintext bytes), records that carry no application
  // data (KeyUpdate, warnings) are acted on. An incomplete record at the end is left
  // (consumed < buf.size()); the caller keeps it and calls again with more bytes. Anything
  // the layer must send in answer (our KeyUpdate, a fatal alert) is appended to out.
  open_result open(std::span<std::uint8_t> buf, byte_buffer& out);
  // The reason of the last error (for logs).
  const std::string& what() const noexcept { return what_; }

  // ---- memory
  // Frees the cipher contexts (about 1 KB each); the keys stay and the next seal/open makes
  // them again. For idle connections.
  void release_contexts() noexcept;

  const traffic_keys& write_keys() const noexcept { return write_; }
  const traffic_keys& read_keys() const noexcept { return read_; }

 private:
  evp_cipher_ctx_st* context(evp_cipher_ctx_st*& slot, const traffic_keys& k, bool encrypt);
  void seal_record(std::uint8_t inner_type, std::span<const std::uint8_t> plaintext, byte_buffer& out);
  void rotate_write(byte_buffer& out, bool request_update);
  std::optional<alert> handle_handshake(std::span<const std::uint8_t> msg, byte_buffer& out);
  open_result fail(alert a, std::string why, open_result r, byte_buffer& out);

  suite suite_;
  role role_;
  traffic_keys write_;
  traffic_keys read_;
  evp_cipher_ctx_st* enc_ = nullptr;
  evp_cipher_ctx_st* dec_ = nullptr;
  std::uint64_t records_since_update_ = 0;
  std::vector<std::uint8_t> handshake_;  // a post-handshake message split across records
  std::string what_;
};

}  // namespace mles::net::tls13
