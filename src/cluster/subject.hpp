// Mles channel name <-> one NATS subject token (cluster mode, issue 10). Pure: no I/O.
//
// Why this scheme. A Mles channel is any non-empty ASCII string (the join frame allows '.',
// '*', '>', spaces and control characters); a NATS subject splits on '.', treats the tokens
// '*' and '>' as wildcards, and must not hold whitespace. Put a channel into a subject as is
// and "a.b" lands on another channel's subject, "*" or ">" subscribes to every channel, and a
// space or CR/LF breaks the protocol line. So the channel becomes exactly ONE token over a
// small alphabet:
//
//   - bytes in [A-Za-z0-9_-] stand for themselves (ordinary names stay readable and short:
//     the token of "general" is "general");
//   - every other byte, including the escape character '=' itself, becomes '=' followed by
//     two upper-case hex digits ("a.b" -> "a=2Eb", "=" -> "=3D", " " -> "=20");
//   - the empty string (never a channel: the join frame rejects it) becomes the lone "=", so
//     the encoding is total and no token is ever empty.
//
// Tokens therefore only hold [A-Za-z0-9_=-]: printable ASCII, never '.', '*', '>', '$' or
// whitespace, so no channel can name a wildcard, a second token or a system subject ($JS,
// $KV, ...). The same alphabet is valid in a JetStream KV key ([-/_=.A-Za-z0-9]), so the
// token can also key the session bucket. The encoding is a bijection between byte strings and
// *canonical* tokens: the decoder accepts only what the encoder writes (upper-case hex, no
// escape for a byte that stands for itself, no lone '=' inside a longer token), so two
// distinct tokens never decode to one channel and decode(encode(c)) == c for every c.
// Cost: up to 3 bytes per byte for names made of other characters; subjects and keys use
// bounded_token, which hashes names whose token would be long.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mles::cluster {

// The escape character of the token encoding.
inline constexpr char token_escape = '=';

// The token of a channel (see above). Deterministic; total over all byte strings.
std::string channel_token(std::string_view channel);

// The channel of a canonical token; nullopt for anything channel_token never returns (empty,
// a byte outside [A-Za-z0-9_=-], a bad or lower-case escape, an escape of a byte that stands
// for itself, a lone '=' inside a longer token). The lone "=" gives the empty string.
std::optional<std::string> channel_from_token(std::string_view token);

// Tokens longer than this take the hashed form (below), so that a subject or a KV key built
// from a channel and a uid stays far under the NATS control-line limit (4 KiB).
inline constexpr std::size_t max_token_size = 256;

// channel_token(name) while it has at most max_token_size bytes; otherwise the hashed form
// "=H" followed by the 64 lower-case hex digits of SHA-256(name). No canonical token starts
// with "=H" ('=' is always followed by two upper-case hex digits there), so a hashed token
// never equals the plain token of another name; two long names share a token only if SHA-256
// collides. The hashed form is not reversible: whoever uses it knows the name already (a
// server subscribes to the channels its own members named).
std::string bounded_token(std::string_view name);

// prefix + '.' + bounded_token(channel), e.g. ("mles", "a.b") -> "mles.a=2Eb". The prefix is
// the caller's literal subject (no wildcards), not checked here.
std::string channel_subject(std::string_view prefix, std::string_view channel);

// Whether text is one NATS subject token: non-empty, printable ASCII, no '.', '*', '>' and no
// whitespace. Every channel_token result is one.
bool is_subject_token(std::string_view text) noexcept;

}  // namespace mles::cluster
