#include "common/util/sha256.h"

#include <algorithm>
#include <cstring>

namespace procsnap {
namespace {

constexpr std::array<uint32_t, 64> kRoundConstants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr std::array<uint32_t, 8> kInitialState = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

constexpr size_t kBlockSize = 64;

uint32_t rotateRight(uint32_t value, int bits) {
  return (value >> bits) | (value << (32 - bits));
}

} // namespace

Sha256::Sha256() : state_(kInitialState) {}

void Sha256::compressBlock(const std::byte* block) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = (std::to_integer<uint32_t>(block[4 * i]) << 24) |
           (std::to_integer<uint32_t>(block[4 * i + 1]) << 16) |
           (std::to_integer<uint32_t>(block[4 * i + 2]) << 8) |
           std::to_integer<uint32_t>(block[4 * i + 3]);
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = rotateRight(w[i - 15], 7) ^ rotateRight(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = rotateRight(w[i - 2], 17) ^ rotateRight(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
  uint32_t e = state_[4], f = state_[5], g = state_[6], h = state_[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t s1 = rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25);
    const uint32_t choose = (e & f) ^ (~e & g);
    const uint32_t t1 = h + s1 + choose + kRoundConstants[i] + w[i];
    const uint32_t s0 = rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22);
    const uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    const uint32_t t2 = s0 + majority;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state_[0] += a;
  state_[1] += b;
  state_[2] += c;
  state_[3] += d;
  state_[4] += e;
  state_[5] += f;
  state_[6] += g;
  state_[7] += h;
}

void Sha256::update(std::span<const std::byte> bytes) {
  total_bytes_ += bytes.size();
  size_t at = 0;
  if (buffered_ > 0) {
    const size_t take = std::min(kBlockSize - buffered_, bytes.size());
    std::memcpy(buffer_.data() + buffered_, bytes.data(), take);
    buffered_ += take;
    at = take;
    if (buffered_ < kBlockSize)
      return;
    compressBlock(buffer_.data());
    buffered_ = 0;
  }
  for (; bytes.size() - at >= kBlockSize; at += kBlockSize)
    compressBlock(bytes.data() + at);
  std::memcpy(buffer_.data(), bytes.data() + at, bytes.size() - at);
  buffered_ = bytes.size() - at;
}

Sha256Digest Sha256::finish() {
  const uint64_t bit_length = total_bytes_ * 8;
  std::byte padding[kBlockSize * 2] = {};
  padding[0] = std::byte{0x80};
  // Pad to 56 mod 64, then the big-endian bit length.
  const size_t pad_length = (buffered_ < 56 ? 56 - buffered_ : kBlockSize + 56 - buffered_);
  for (int i = 0; i < 8; ++i)
    padding[pad_length + i] = static_cast<std::byte>(bit_length >> (56 - 8 * i));
  const uint64_t saved_total = total_bytes_;
  update({padding, pad_length + 8});
  total_bytes_ = saved_total;
  Sha256Digest digest;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j)
      digest[4 * i + j] = static_cast<std::byte>(state_[i] >> (24 - 8 * j));
  return digest;
}

Sha256Digest sha256(std::span<const std::byte> bytes) {
  Sha256 hash;
  hash.update(bytes);
  return hash.finish();
}

Sha256Digest hmacSha256(std::span<const std::byte> key, std::span<const std::byte> message) {
  std::array<std::byte, kBlockSize> block_key{};
  if (key.size() > kBlockSize) {
    const Sha256Digest hashed = sha256(key);
    std::memcpy(block_key.data(), hashed.data(), hashed.size());
  } else if (!key.empty()) {
    std::memcpy(block_key.data(), key.data(), key.size());
  }
  std::array<std::byte, kBlockSize> inner_pad, outer_pad;
  for (size_t i = 0; i < kBlockSize; ++i) {
    inner_pad[i] = block_key[i] ^ std::byte{0x36};
    outer_pad[i] = block_key[i] ^ std::byte{0x5c};
  }
  Sha256 inner;
  inner.update(inner_pad);
  inner.update(message);
  const Sha256Digest inner_digest = inner.finish();
  Sha256 outer;
  outer.update(outer_pad);
  outer.update(inner_digest);
  return outer.finish();
}

} // namespace procsnap
