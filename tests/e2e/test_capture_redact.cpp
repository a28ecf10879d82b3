// End-to-end: procsnap-capture --redact on the sample. The redacted strings must be absent
// from every decompressed byte (chunks, module blocks, `procsnap-analyze strings`), from the
// metadata and from the raw file; the REDACTION manifest must list them at the addresses the
// sample reports, with a hash the holder of the secret can recompute; every other byte of the
// regions involved must be as the sample wrote it.

#include "tests/e2e/analyze_commands_support.h"
#include "tests/e2e/test_capture_support.h"

#include "capture/redactor.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace procsnap::test {
namespace {

using nlohmann::json;

std::span<const std::byte> bytesOf(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

// Occurrences of needle in a file's raw bytes, as `grep -c` counts lines holding it.
int grepCount(const std::string& needle, const std::string& path) {
  CommandResult grep = runCommand({"grep", "-c", "-a", "-F", "--", needle, path}, 30);
  EXPECT_TRUE(grep.exit_code == 0 || grep.exit_code == 1) << grep.err;
  return std::atoi(grep.out.c_str());
}

bool moduleBlocksContain(const ArchiveReader& reader, std::string_view needle) {
  for (size_t i = 0; i < reader.modules().size(); ++i) {
    auto sketch = reader.readModule(i);
    EXPECT_TRUE(sketch.ok()) << sketch.error().message;
    if (!sketch.ok())
      continue;
    for (const auto& piece : sketch->pieces) {
      std::string_view text(reinterpret_cast<const char*>(piece.bytes.data()), piece.bytes.size());
      if (text.find(needle) != std::string_view::npos)
        return true;
    }
  }
  return false;
}

class CaptureRedact : public ::testing::Test {
protected:
  void SetUp() override {
    auto sample = SampleProcess::start(SampleVariant::Pie);
    ASSERT_TRUE(sample.ok()) << sample.error().message;
    sample_ = std::move(*sample);
    auto dir = TempDir::create("procsnap-redact");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    const json& truth = sample_->truth();
    secrets_ = {truth["heap_small"]["value"].get<std::string>(),
                truth["heap_large"]["value"].get<std::string>(),
                truth["data_message"]["value"].get<std::string>()};
  }

  // Captures with the first two secrets on the command line and the third from a file.
  std::unique_ptr<ArchiveReader> capture(const std::string& name,
                                         std::vector<std::string> extra = {}) {
    const std::string patterns = dir_->file("patterns.txt");
    FILE* file = std::fopen(patterns.c_str(), "w");
    EXPECT_NE(file, nullptr);
    std::fprintf(file, "%s\n", secrets_[2].c_str());
    std::fclose(file);
    const std::string path = dir_->file(name);
    std::vector<std::string> args = {std::to_string(sample_->pid()),
                                     "-o",
                                     path,
                                     "--json",
                                     "--redact",
                                     secrets_[0],
                                     "--redact",
                                     secrets_[1],
                                     "--redact-file",
                                     patterns};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult run = runCapture(args);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    json result = parseJson(run.out);
    EXPECT_GE(result.value("redactions", 0u), 3u) << run.out;
    for (const std::string& secret : secrets_)
      EXPECT_EQ(run.out.find(secret), std::string::npos) << "the capture's report names a secret";
    auto reader = ArchiveReader::open(path);
    EXPECT_TRUE(reader.ok()) << reader.error().message;
    return reader.ok() ? std::move(*reader) : nullptr;
  }

  std::unique_ptr<SampleProcess> sample_;
  std::optional<TempDir> dir_;
  std::vector<std::string> secrets_;
};

TEST_F(CaptureRedact, SecretsAreGoneAndListedAtTheirAddresses) {
  auto reader = capture("redacted.psnap");
  ASSERT_TRUE(reader);
  const std::string path = dir_->file("redacted.psnap");
  const json& truth = sample_->truth();

  // Nowhere: decompressed chunks, module blocks, the raw file, `strings`, `info`.
  for (const std::string& secret : secrets_) {
    EXPECT_FALSE(anyChunkContains(*reader, secret)) << secret;
    EXPECT_FALSE(moduleBlocksContain(*reader, secret)) << secret;
    EXPECT_EQ(grepCount(secret, path), 0) << secret;
  }
  CommandResult strings = runAnalyze({"strings", path});
  ASSERT_EQ(strings.exit_code, 0) << strings.err;
  CommandResult info = runAnalyze({"info", "--json", path});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  for (const std::string& secret : secrets_) {
    EXPECT_EQ(strings.out.find(secret), std::string::npos) << secret;
    EXPECT_EQ(info.out.find(secret), std::string::npos) << secret;
  }

  // The manifest: each secret at the address the sample reports, filled with '*'.
  const RedactionManifest* manifest = reader->redactions();
  ASSERT_NE(manifest, nullptr);
  EXPECT_EQ(manifest->pattern_count, 3u);
  EXPECT_EQ(manifest->fill, kRedactionFill);
  EXPECT_EQ(manifest->omitted_entries, 0u);
  const char* keys[] = {"heap_small", "heap_large", "data_message"};
  for (uint32_t p = 0; p < 3; ++p) {
    const uint64_t address = addressOf(truth[keys[p]]["addr"]);
    bool listed = false;
    for (const RedactionEntry& entry : manifest->entries) {
      if (entry.space != RedactionSpace::Memory || entry.location != address)
        continue;
      listed = true;
      EXPECT_EQ(entry.pattern, p);
      EXPECT_EQ(entry.length, secrets_[p].size());
      // The holder of the secret can confirm; another string gives another hash.
      EXPECT_EQ(entry.hash, redactionHash(manifest->salt, bytesOf(secrets_[p])));
      EXPECT_NE(entry.hash, redactionHash(manifest->salt, bytesOf(secrets_[p] + "x")));
    }
    EXPECT_TRUE(listed) << keys[p] << " at " << hex(address) << " is not in the manifest";
    auto stored = readString(*reader, address, secrets_[p].size());
    ASSERT_TRUE(stored.has_value()) << keys[p];
    EXPECT_EQ(*stored, std::string(secrets_[p].size(), '*')) << keys[p];
  }
  uint64_t listed_bytes = 0;
  for (const RedactionEntry& entry : manifest->entries)
    listed_bytes += entry.length;
  EXPECT_GE(listed_bytes, manifest->bytes_redacted); // overlaps count once in bytes_redacted
  EXPECT_GT(manifest->bytes_redacted, 0u);

  // The rest is intact: the large heap block's text after its marker, the message's NUL
  // padding, the bss pattern.
  const uint64_t large = addressOf(truth["heap_large"]["addr"]);
  auto after = readString(*reader, large + secrets_[1].size(), 38);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*after, "\nline 000000 procsnap large heap text\n");
  auto padding = readMemory(*reader, addressOf(truth["data_message"]["addr"]) + secrets_[2].size(),
                            64 - secrets_[2].size());
  ASSERT_TRUE(padding.has_value());
  for (std::byte b : *padding)
    EXPECT_EQ(b, std::byte{0});
  auto bss = readMemory(*reader, addressOf(truth["bss_array"]["addr"]) + 4096, 8);
  ASSERT_TRUE(bss.has_value());
  uint32_t word = 0;
  std::memcpy(&word, bss->data(), 4);
  EXPECT_EQ(word, 1024u ^ 0x5a5a5a5au);

  // info reports it.
  json report = parseJson(info.out)["sources"][0]["contents"];
  ASSERT_TRUE(report["redactions"].is_object()) << info.out;
  EXPECT_EQ(report["redactions"]["patterns"], 3);
  EXPECT_EQ(report["redactions"]["matches"].get<uint64_t>(),
            manifest->entries.size() + manifest->omitted_entries);
  EXPECT_EQ(report["redactions"]["bytes"].get<uint64_t>(), manifest->bytes_redacted);
  EXPECT_EQ(report["environment"], false);

  // verify accepts the archive with its REDACTION block.
  CommandResult verify = runAnalyze({"verify", path});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST_F(CaptureRedact, OnlyMatchesDifferFromAnUnredactedCapture) {
  auto redacted = capture("redacted.psnap");
  ASSERT_TRUE(redacted);
  const std::string plain_path = dir_->file("plain.psnap");
  CommandResult run = runCapture({std::to_string(sample_->pid()), "-o", plain_path});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto plain = ArchiveReader::open(plain_path);
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ((*plain)->redactions(), nullptr);

  // In the regions the sample never writes to after start (its large heap block, .data, the
  // exe's read-only data), the two captures differ exactly where the manifest says.
  const json& truth = sample_->truth();
  const RedactionManifest* manifest = redacted->redactions();
  ASSERT_NE(manifest, nullptr);
  const SnapshotMetadata& metadata = redacted->metadata();
  for (const char* key : {"heap_large", "data_message", "rodata_string"}) {
    const uint64_t address = addressOf(truth[key]["addr"]);
    const RegionRecord* region = nullptr;
    for (const RegionRecord& r : metadata.regions)
      if (r.map().start <= address && address < r.map().end)
        region = &r;
    ASSERT_NE(region, nullptr) << key;
    const uint64_t start = region->map().start;
    const size_t size = region->map().end - start;
    std::vector<char> expected_fill(size, 0);
    for (const RedactionEntry& entry : manifest->entries)
      if (entry.space == RedactionSpace::Memory && entry.location >= start &&
          entry.location < start + size)
        std::fill_n(expected_fill.begin() + (entry.location - start),
                    std::min<uint64_t>(entry.length, start + size - entry.location), 1);
    size_t compared = 0;
    for (uint64_t page = start; page < start + size; page += 4096) {
      auto a = readMemory(*redacted, page, 4096);
      auto b = readMemory(**plain, page, 4096);
      ASSERT_EQ(a.has_value(), b.has_value()) << key << " page " << hex(page);
      if (!a)
        continue;
      for (size_t i = 0; i < 4096; ++i) {
        const bool filled = expected_fill[page - start + i] != 0;
        if (filled) {
          ASSERT_EQ((*a)[i], kRedactionFill) << key << " " << hex(page + i);
        } else {
          ASSERT_EQ((*a)[i], (*b)[i]) << key << " changed at " << hex(page + i);
        }
        ++compared;
      }
    }
    EXPECT_GT(compared, 0u) << key;
  }
}

TEST_F(CaptureRedact, EmbeddedBinariesAndEnvironmentAreRedactedAndReported) {
  auto reader = capture("embedded.psnap", {"--embed-binaries", "--environ"});
  ASSERT_TRUE(reader);
  const std::string path = dir_->file("embedded.psnap");
  // The exe embeds its string literals, among them the large heap marker.
  bool module_entry = false;
  for (const RedactionEntry& entry : reader->redactions()->entries)
    module_entry = module_entry || entry.space == RedactionSpace::Module;
  EXPECT_TRUE(module_entry) << "no match in the embedded executable";
  for (const std::string& secret : secrets_) {
    EXPECT_FALSE(moduleBlocksContain(*reader, secret)) << secret;
    EXPECT_FALSE(anyChunkContains(*reader, secret)) << secret;
    EXPECT_EQ(grepCount(secret, path), 0) << secret;
  }
  CommandResult info = runAnalyze({"info", "--json", path});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  json contents = parseJson(info.out)["sources"][0]["contents"];
  EXPECT_EQ(contents["environment"], true);
  EXPECT_GT(contents["embedded_binaries"].get<int>(), 0);
  CommandResult text = runAnalyze({"info", path});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("redactions"), std::string::npos) << text.out;
}

TEST(CaptureRedactOptions, BadPatternsAreUsageErrorsThatNeverEchoThePattern) {
  const std::string long_secret(kMaxRedactPatternSize + 1, 's');
  CommandResult run = runCapture({"--redact", long_secret, "1"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.err.find(long_secret), std::string::npos);
  EXPECT_NE(run.err.find("--redact pattern 0 is longer than 4096 bytes"), std::string::npos)
      << run.err;
  CommandResult empty = runCapture({"--redact", "", "1"});
  EXPECT_EQ(empty.exit_code, 2);
  CommandResult missing = runCapture({"--redact-file", "/nonexistent/patterns", "1"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot read --redact-file"), std::string::npos) << missing.err;
}

} // namespace
} // namespace procsnap::test
