#include "capture/redactor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace procsnap {
namespace {

std::array<std::byte, kRedactionSaltSize> fixedSalt() {
  std::array<std::byte, kRedactionSaltSize> salt{};
  for (size_t i = 0; i < salt.size(); ++i)
    salt[i] = std::byte(0x40 + i);
  return salt;
}

std::span<const std::byte> bytesOf(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

std::string textOf(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Memory made of page-multiple chunks, some contiguous, fed through a redactor the way
// capture_session does (each chunk held until the next feed), then compared with a plain
// search over the whole address range.
TEST(Redactor, OverwritesMatchesInsideAndAcrossChunks) {
  const std::string secret = "hunter2-the-password";
  constexpr uint64_t kBase = 0x10000;
  std::vector<std::byte> memory(6 * 4096, std::byte{'.'});
  auto put = [&](uint64_t offset, std::string_view text) {
    std::memcpy(memory.data() + offset, text.data(), text.size());
  };
  put(100, secret);                      // inside chunk 0
  put(4096 - 5, secret);                 // across chunk 0 / chunk 1 (contiguous)
  put(2 * 4096 - 1, secret);             // across chunk 1 / chunk 2, one byte before
  put(3 * 4096 - 7, secret);             // chunk 2 ends before a gap: not contiguous with chunk 3
  put(6 * 4096 - secret.size(), secret); // the very end
  // Chunks: [0,1) [1,2) [2,3) then a 1-page gap, then [4,6) as one chunk.
  struct Piece {
    uint64_t offset, size;
  };
  const std::vector<Piece> pieces = {{0, 4096}, {4096, 4096}, {8192, 4096}, {16384, 8192}};
  Redactor redactor({secret, "no-such-pattern"}, fixedSalt());
  std::vector<std::vector<std::byte>> chunks;
  for (const Piece& piece : pieces)
    chunks.emplace_back(memory.begin() + piece.offset, memory.begin() + piece.offset + piece.size);
  for (size_t i = 0; i < pieces.size(); ++i)
    redactor.feedMemory(kBase + pieces[i].offset, chunks[i]);
  redactor.finishMemory();

  const RedactionManifest manifest = redactor.manifest();
  // The occurrence at 3*4096-7 runs into the page that was not stored: no complete match is
  // in the stored bytes, so its stored 7-byte head stays (a documented limit).
  ASSERT_EQ(manifest.entries.size(), 4u);
  const uint64_t expected[] = {100, 4096 - 5, 2 * 4096 - 1, 6 * 4096 - secret.size()};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(manifest.entries[i].location, kBase + expected[i]);
    EXPECT_EQ(manifest.entries[i].length, secret.size());
    EXPECT_EQ(manifest.entries[i].pattern, 0u);
    EXPECT_EQ(manifest.entries[i].hash, redactionHash(fixedSalt(), bytesOf(secret)));
  }
  EXPECT_EQ(manifest.bytes_redacted, 4 * secret.size());
  EXPECT_EQ(textOf(chunks[2]).substr(4096 - 7), "hunter2");
  EXPECT_EQ(textOf(chunks[0]).find(secret.substr(0, 4)), std::string::npos);
  EXPECT_EQ(textOf(chunks[1]).find("-the-password"), std::string::npos);
  EXPECT_EQ(textOf(chunks[3]).find("the-password"), std::string::npos);
  // Everything else is unchanged.
  size_t changed = 0;
  for (size_t i = 0; i < pieces.size(); ++i)
    for (uint64_t j = 0; j < pieces[i].size; ++j)
      changed += chunks[i][j] != memory[pieces[i].offset + j] ? 1 : 0;
  EXPECT_EQ(changed, manifest.bytes_redacted);
}

TEST(Redactor, OverlappingMatchesLeaveNoOccurrence) {
  std::vector<std::byte> bytes(4096, std::byte{'-'});
  std::memcpy(bytes.data() + 10, "abcabcab", 8);
  Redactor redactor({"abcab"}, fixedSalt());
  redactor.feedMemory(0x1000, bytes);
  redactor.finishMemory();
  EXPECT_EQ(redactor.manifest().entries.size(), 2u); // at 10 and at 13
  EXPECT_EQ(redactor.manifest().bytes_redacted, 8u); // the union
  EXPECT_EQ(textOf(bytes).substr(10, 8), "********");
}

TEST(Redactor, ModulePiecesAdjacentInTheFileAreOneRun) {
  ModuleSketch sketch;
  sketch.record.path = "/opt/app/libsecret-token.so";
  sketch.file_size = 0x3000;
  ModuleSketch::Piece a{0x100, std::vector<std::byte>(16, std::byte{'x'})};
  ModuleSketch::Piece b{0x110, std::vector<std::byte>(16, std::byte{'y'})};
  ModuleSketch::Piece c{0x2000, std::vector<std::byte>(32, std::byte{'z'})};
  std::memcpy(a.bytes.data() + 12, "toke", 4); // "token" split across a and b
  std::memcpy(b.bytes.data(), "n", 1);
  std::memcpy(c.bytes.data() + 3, "token", 5);
  sketch.pieces = {a, b, c};
  Redactor redactor({"token"}, fixedSalt());
  redactor.redactModule(3, sketch);
  const RedactionManifest manifest = redactor.manifest();
  ASSERT_EQ(manifest.entries.size(), 2u);
  EXPECT_EQ(manifest.entries[0].space, RedactionSpace::Module);
  EXPECT_EQ(manifest.entries[0].module_index, 3u);
  EXPECT_EQ(manifest.entries[0].location, 0x10cu);
  EXPECT_EQ(manifest.entries[1].location, 0x2003u);
  EXPECT_EQ(textOf(sketch.pieces[0].bytes).substr(12), "****");
  EXPECT_EQ(textOf(sketch.pieces[1].bytes).substr(0, 2), "*y");
  EXPECT_EQ(textOf(sketch.pieces[2].bytes).substr(2, 7), "z*****z");
  EXPECT_EQ(sketch.record.path, "/opt/app/libsecret-*****.so");
  EXPECT_EQ(manifest.metadata_fields, 1u);
}

TEST(Redactor, MetadataStringsAreRedactedButNotCountedAsBytes) {
  SnapshotMetadata metadata;
  metadata.process.cmdline = {"/bin/app", "--password=swordfish"};
  metadata.process.environ = {"PASS=swordfish", "HOME=/root"};
  metadata.warnings = {"cannot open /tmp/swordfish"};
  Redactor redactor({"swordfish"}, fixedSalt());
  redactor.redactMetadata(metadata);
  EXPECT_EQ(metadata.process.cmdline[1], "--password=*********");
  EXPECT_EQ(metadata.process.environ[0], "PASS=*********");
  EXPECT_EQ(metadata.process.environ[1], "HOME=/root");
  EXPECT_EQ(metadata.warnings[0], "cannot open /tmp/*********");
  EXPECT_EQ(redactor.manifest().metadata_fields, 3u);
  EXPECT_EQ(redactor.manifest().bytes_redacted, 0u);
  EXPECT_TRUE(redactor.manifest().entries.empty());
}

TEST(Redactor, RandomMemoryAgreesWithAPlainSearch) {
  // Random chunk layouts over a small alphabet, so matches (and overlaps, and junction
  // matches) are frequent; the result must equal overwriting every occurrence found by a
  // naive search over each contiguous stretch.
  std::mt19937 random(20261126);
  for (int round = 0; round < 50; ++round) {
    const std::vector<std::string> patterns = {"abca", "cc", "bab"};
    const size_t pages = 1 + random() % 6;
    std::vector<std::byte> memory(pages * 4096);
    for (auto& b : memory)
      b = std::byte("abc"[random() % 3]);
    // Cut into chunks of 1..3 pages; some cuts are gaps (the next chunk starts a page later).
    struct Chunk {
      uint64_t address;
      std::vector<std::byte> bytes;
      size_t offset;
    };
    std::vector<Chunk> chunks;
    uint64_t address = 0x100000;
    for (size_t page = 0; page < pages;) {
      const size_t n = std::min<size_t>(pages - page, 1 + random() % 3);
      if (random() % 3 == 0)
        address += 4096; // a gap before this chunk
      chunks.push_back(
          {address,
           std::vector<std::byte>(memory.begin() + page * 4096, memory.begin() + (page + n) * 4096),
           page * 4096});
      address += n * 4096;
      page += n;
    }
    Redactor redactor(patterns, fixedSalt());
    for (Chunk& chunk : chunks)
      redactor.feedMemory(chunk.address, chunk.bytes);
    redactor.finishMemory();

    // Expected: concatenate contiguous chunks, overwrite every occurrence of every pattern.
    size_t expected_entries = 0;
    size_t first = 0;
    while (first < chunks.size()) {
      size_t last = first + 1;
      while (last < chunks.size() &&
             chunks[last - 1].address + chunks[last - 1].bytes.size() == chunks[last].address)
        ++last;
      std::string original;
      for (size_t i = first; i < last; ++i)
        original += textOf(
            std::vector<std::byte>(memory.begin() + chunks[i].offset,
                                   memory.begin() + chunks[i].offset + chunks[i].bytes.size()));
      std::string expected = original;
      for (const std::string& pattern : patterns)
        for (size_t at = original.find(pattern); at != std::string::npos;
             at = original.find(pattern, at + 1)) {
          ++expected_entries;
          expected.replace(at, pattern.size(), std::string(pattern.size(), '*'));
        }
      std::string actual;
      for (size_t i = first; i < last; ++i)
        actual += textOf(chunks[i].bytes);
      ASSERT_EQ(actual, expected) << "round " << round;
      first = last;
    }
    EXPECT_EQ(redactor.manifest().entries.size(), expected_entries) << "round " << round;
  }
}

} // namespace
} // namespace procsnap
