#include "common/archive/redaction_manifest.h"
#include "common/util/sha256.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

namespace procsnap {
namespace {

std::span<const std::byte> bytesOf(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

std::string hexOf(const Sha256Digest& digest) {
  std::string text;
  char pair[3];
  for (std::byte b : digest) {
    std::snprintf(pair, sizeof pair, "%02x", std::to_integer<unsigned>(b));
    text += pair;
  }
  return text;
}

TEST(Sha256, MatchesFips180Vectors) {
  EXPECT_EQ(hexOf(sha256(bytesOf(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hexOf(sha256(bytesOf("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hexOf(sha256(bytesOf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(hexOf(sha256(bytesOf(million))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalUpdatesMatchOneShotAndSha256sum) {
  // Sizes around the 64-byte block and the 56-byte padding boundary, fed in odd pieces.
  std::mt19937 random(7);
  auto dir = test::TempDir::create("procsnap-sha");
  ASSERT_TRUE(dir.ok());
  for (size_t size : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 1000u, 70000u}) {
    std::string data(size, '\0');
    for (char& c : data)
      c = static_cast<char>(random());
    Sha256 incremental;
    for (size_t at = 0; at < size;) {
      const size_t step = std::min<size_t>(size - at, 1 + random() % 97);
      incremental.update(bytesOf(std::string_view(data).substr(at, step)));
      at += step;
    }
    const std::string expected = hexOf(sha256(bytesOf(data)));
    EXPECT_EQ(hexOf(incremental.finish()), expected) << size;
    const std::string path = dir->file("data.bin");
    FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    std::fwrite(data.data(), 1, data.size(), file);
    std::fclose(file);
    test::CommandResult tool = test::runCommand({"sha256sum", path}, 10);
    ASSERT_EQ(tool.exit_code, 0);
    EXPECT_EQ(tool.out.substr(0, 64), expected) << size;
  }
}

TEST(HmacSha256, MatchesRfc4231Vectors) {
  // Test case 2: a short key.
  EXPECT_EQ(hexOf(hmacSha256(bytesOf("Jefe"), bytesOf("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a 131-byte key (longer than a block: hashed first).
  const std::string key(131, '\xaa');
  EXPECT_EQ(hexOf(hmacSha256(bytesOf(key),
                             bytesOf("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(RedactionManifest, RoundTripsAndRejectsDamage) {
  RedactionManifest manifest;
  manifest.pattern_count = 2;
  manifest.fill = std::byte{0x2a};
  for (size_t i = 0; i < manifest.salt.size(); ++i)
    manifest.salt[i] = std::byte(i * 7);
  manifest.bytes_redacted = 77;
  manifest.omitted_entries = 3;
  manifest.metadata_fields = 1;
  RedactionEntry memory;
  memory.location = 0x7f0000001234;
  memory.length = 26;
  memory.pattern = 1;
  memory.hash = redactionHash(manifest.salt, bytesOf("secret"));
  RedactionEntry module = memory;
  module.space = RedactionSpace::Module;
  module.module_index = 4;
  module.location = 0x2000;
  module.pattern = 0;
  manifest.entries = {memory, module};

  const auto payload = encodeRedactionManifest(manifest);
  ASSERT_EQ(payload.size(), kRedactionHeaderSize + 2 * kRedactionEntrySize);
  auto decoded = decodeRedactionManifest(payload);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->pattern_count, 2u);
  EXPECT_EQ(decoded->fill, std::byte{0x2a});
  EXPECT_EQ(decoded->salt, manifest.salt);
  EXPECT_EQ(decoded->bytes_redacted, 77u);
  EXPECT_EQ(decoded->omitted_entries, 3u);
  EXPECT_EQ(decoded->metadata_fields, 1u);
  ASSERT_EQ(decoded->entries.size(), 2u);
  EXPECT_EQ(decoded->entries[0].location, memory.location);
  EXPECT_EQ(decoded->entries[0].length, 26u);
  EXPECT_EQ(decoded->entries[0].pattern, 1u);
  EXPECT_EQ(decoded->entries[0].hash, memory.hash);
  EXPECT_EQ(decoded->entries[1].space, RedactionSpace::Module);
  EXPECT_EQ(decoded->entries[1].module_index, 4u);

  // Truncated, an entry count that does not fit, a pattern index out of range.
  EXPECT_FALSE(decodeRedactionManifest(std::span(payload).first(kRedactionHeaderSize - 1)).ok());
  EXPECT_FALSE(decodeRedactionManifest(std::span(payload).first(payload.size() - 1)).ok());
  auto bad_count = payload;
  bad_count[8] = std::byte{0xff};
  EXPECT_FALSE(decodeRedactionManifest(bad_count).ok());
  auto bad_pattern = payload;
  bad_pattern[kRedactionHeaderSize + 16] = std::byte{9};
  auto rejected = decodeRedactionManifest(bad_pattern);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().code, ErrorCode::Corrupt);
  EXPECT_NE(rejected.error().message.find("pattern 9"), std::string::npos)
      << rejected.error().message;
}

} // namespace
} // namespace procsnap
