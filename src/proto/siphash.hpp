// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012): the join's
// auth value and the payload hash of peer links' dedup window. Our own code rather than
// OpenSSL's EVP_MAC: the dedup window hashes every message of a channel linked to a reference
// server, and EVP_MAC took ~70 ns for 16 bytes and ~110 ns for 64 against ~12 and ~28 here.
// The tests check it against OpenSSL for every length up to 100. Pure: no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace mles::proto {

// SipHash-2-4 of bytes under a 128-bit key (k0 = key[0..7], k1 = key[8..15], little-endian),
// as the 64-bit value (what Rust's SipHasher::finish returns).
std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::span<const std::uint8_t> bytes) noexcept;

}  // namespace mles::proto
