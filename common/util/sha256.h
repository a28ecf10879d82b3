// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for the redaction manifest: a keyed hash
// of each removed byte string lets someone who holds the secret confirm its removal without
// the archive revealing it. Small and self-contained so procsnap-capture needs no crypto
// library (a static build is a goal).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace procsnap {

inline constexpr size_t kSha256DigestSize = 32;
using Sha256Digest = std::array<std::byte, kSha256DigestSize>;

// Incremental SHA-256.
class Sha256 final {
public:
  Sha256();
  void update(std::span<const std::byte> bytes);
  Sha256Digest finish(); // the object must not be updated afterwards

private:
  void compressBlock(const std::byte* block);

  std::array<uint32_t, 8> state_;
  std::array<std::byte, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

Sha256Digest sha256(std::span<const std::byte> bytes);
Sha256Digest hmacSha256(std::span<const std::byte> key, std::span<const std::byte> message);

} // namespace procsnap
