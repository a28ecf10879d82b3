#include "analyze/output/core_writer.h"
#include "analyze/sources/archive_snapshot.h"

#include "tests/support/archive_synth.h"
#include "tests/support/peak_growth.h"
#include "tests/support/run_command.h"
#include "tests/support/sample_process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

namespace procsnap::analyze {
namespace {

using test::syntheticByte;

class ArchiveSnapshotTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = test::TempDir::create("analyze-snapshot");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_.emplace(std::move(dir.value()));
    path_ = dir_->file("synthetic.psnap");
    auto written = test::writeDefaultSyntheticArchive(path_);
    ASSERT_TRUE(written.ok()) << written.error().message;
    auto snapshot = openSnapshot(path_);
    ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
    snapshot_ = std::move(*snapshot);
  }

  ReadResult read(uint64_t address, std::vector<uint8_t>& out) {
    auto result = snapshot_->read(address, out);
    if (!result) {
      ADD_FAILURE() << llvm::toString(result.takeError());
      return {};
    }
    return *result;
  }

  std::optional<test::TempDir> dir_;
  std::string path_;
  std::unique_ptr<Snapshot> snapshot_;
};

TEST_F(ArchiveSnapshotTest, OpensWithMetadata) {
  EXPECT_EQ(snapshot_->sourceKind(), "archive");
  EXPECT_EQ(snapshot_->sourcePath(), path_);
  EXPECT_EQ(snapshot_->metadata().process.pid, 4242);
  EXPECT_EQ(snapshot_->metadata().regions.size(), 5u);
  EXPECT_EQ(snapshot_->findRegion(0x1000000), 2);
  EXPECT_EQ(snapshot_->findRegion(0x100ffff), 2);
  EXPECT_EQ(snapshot_->findRegion(0x1010000), -1);
  EXPECT_EQ(snapshot_->findRegion(0x3fffff), -1);
}

TEST_F(ArchiveSnapshotTest, ReadsStoredBytesAndZerosAndSaysWhichIsWhich) {
  std::vector<uint8_t> out(0x10000);
  ReadResult result = read(0x1000000, out);
  EXPECT_EQ(result.bytes_stored, 0x8000u);
  ASSERT_EQ(result.runs.size(), 2u);
  EXPECT_EQ(result.runs[0].start, 0x1000000u);
  EXPECT_EQ(result.runs[0].end, 0x1008000u);
  EXPECT_EQ(result.runs[0].state, PageState::Stored);
  EXPECT_EQ(result.runs[0].region_index, 2);
  EXPECT_EQ(result.runs[1].state, PageState::NotPresent);
  EXPECT_TRUE(result.runs[1].mapped);
  for (size_t i = 0; i < out.size(); ++i) {
    uint8_t expected = i < 0x8000 ? static_cast<uint8_t>(syntheticByte(0x1000000 + i)) : 0;
    ASSERT_EQ(out[i], expected) << "at offset " << i;
  }
}

TEST_F(ArchiveSnapshotTest, ReadsAcrossUnmappedGapsAndZeroPages) {
  // From 16 bytes before the end of the text mapping to 16 bytes into the data mapping's
  // third page: text stored, a hole, data stored, data zero, data stored.
  const uint64_t start = 0x402000 - 16;
  const uint64_t end = 0x603000 + 16;
  std::vector<uint8_t> out(end - start, 0xcc);
  ReadResult result = read(start, out);
  ASSERT_EQ(result.runs.size(), 5u);
  EXPECT_TRUE(result.runs[0].mapped);
  EXPECT_FALSE(result.runs[1].mapped);
  EXPECT_EQ(result.runs[1].start, 0x402000u);
  EXPECT_EQ(result.runs[1].end, 0x601000u);
  EXPECT_EQ(result.runs[1].region_index, -1);
  EXPECT_EQ(result.runs[3].state, PageState::Zero);
  EXPECT_EQ(result.runs[4].end, end);
  EXPECT_TRUE(result.anyUnmapped());
  EXPECT_EQ(result.bytes_stored, 16u + 0x1000u + 16u);
  uint64_t covered = 0;
  for (const ReadRun& run : result.runs) {
    covered += run.size();
    for (uint64_t a = run.start; a < run.end; ++a) {
      uint8_t expected =
          run.state == PageState::Stored && run.mapped ? static_cast<uint8_t>(syntheticByte(a)) : 0;
      ASSERT_EQ(out[a - start], expected) << std::hex << a;
    }
  }
  EXPECT_EQ(covered, out.size());
}

TEST_F(ArchiveSnapshotTest, ReadsOutsideEverythingAndRefusesWrappingRanges) {
  std::vector<uint8_t> out(64, 0xcc);
  ReadResult result = read(0x10, out);
  ASSERT_EQ(result.runs.size(), 1u);
  EXPECT_FALSE(result.runs[0].mapped);
  EXPECT_EQ(result.bytes_stored, 0u);
  EXPECT_EQ(out, std::vector<uint8_t>(64, 0));

  auto wrapped = snapshot_->read(~uint64_t{0} - 8, out);
  ASSERT_FALSE(static_cast<bool>(wrapped));
  EXPECT_NE(llvm::toString(wrapped.takeError()).find("0xfffffffffffffff7"), std::string::npos);
}

TEST_F(ArchiveSnapshotTest, StoredExtentsMatchStoredRunsWithoutDecompressing) {
  auto* archive = static_cast<ArchiveSnapshot*>(snapshot_.get());
  auto extents = snapshot_->storedExtents(0, ~uint64_t{0});
  EXPECT_EQ(archive->chunksDecompressed(), 0u);
  std::vector<std::pair<uint64_t, uint64_t>> expected;
  for (const RegionRecord& region : snapshot_->metadata().regions)
    for (const PageRun& run : region.pages)
      if (run.state == PageState::Stored) {
        if (!expected.empty() && expected.back().second == run.start)
          expected.back().second = run.end;
        else
          expected.push_back({run.start, run.end});
      }
  ASSERT_EQ(extents.size(), expected.size());
  for (size_t i = 0; i < extents.size(); ++i) {
    EXPECT_EQ(extents[i].start, expected[i].first);
    EXPECT_EQ(extents[i].end, expected[i].second);
  }
  auto clipped = snapshot_->storedExtents(0x601800, 0x603800);
  ASSERT_EQ(clipped.size(), 2u);
  EXPECT_EQ(clipped[0].start, 0x601800u);
  EXPECT_EQ(clipped[0].end, 0x602000u);
  EXPECT_EQ(clipped[1].start, 0x603000u);
  EXPECT_EQ(clipped[1].end, 0x603800u);
}

TEST_F(ArchiveSnapshotTest, RereadsComeFromTheChunkCache) {
  auto* archive = static_cast<ArchiveSnapshot*>(snapshot_.get());
  std::vector<uint8_t> out(256);
  read(0x1000100, out);
  uint64_t after_first = archive->chunksDecompressed();
  EXPECT_EQ(after_first, 1u);
  for (int i = 0; i < 10; ++i)
    read(0x1000100 + i * 16, out);
  EXPECT_EQ(archive->chunksDecompressed(), after_first);
}

TEST_F(ArchiveSnapshotTest, NoModuleImageWithoutASketch) {
  auto image = snapshot_->moduleImage(0);
  ASSERT_TRUE(static_cast<bool>(image)) << llvm::toString(image.takeError());
  EXPECT_EQ(*image, nullptr);
  auto beyond = snapshot_->moduleImage(99);
  ASSERT_TRUE(static_cast<bool>(beyond));
  EXPECT_EQ(*beyond, nullptr);
}

TEST(OpenSnapshotTest, BadInputsGiveOneLineErrors) {
  auto dir = test::TempDir::create("analyze-open");
  ASSERT_TRUE(dir.ok());
  auto missing = openSnapshot(dir->file("missing.psnap"));
  ASSERT_FALSE(static_cast<bool>(missing));
  std::string message = llvm::toString(missing.takeError());
  EXPECT_NE(message.find("cannot open"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);

  std::ofstream(dir->file("text.psnap")) << "just some text, not an archive\n";
  auto text = openSnapshot(dir->file("text.psnap"));
  ASSERT_FALSE(static_cast<bool>(text));
  message = llvm::toString(text.takeError());
  EXPECT_NE(message.find("text.psnap"), std::string::npos) << message;

  std::ofstream(dir->file("empty.psnap")).close();
  auto empty = openSnapshot(dir->file("empty.psnap"));
  ASSERT_FALSE(static_cast<bool>(empty));
  llvm::consumeError(empty.takeError());

  auto directory = openSnapshot(dir->path());
  ASSERT_FALSE(static_cast<bool>(directory));
  llvm::consumeError(directory.takeError());
}

TEST(OpenSnapshotTest, SalvageOpensAnArchiveWithoutTrailer) {
  auto dir = test::TempDir::create("analyze-salvage");
  ASSERT_TRUE(dir.ok());
  std::string path = dir->file("dead-writer.psnap");
  SnapshotMetadata metadata = test::syntheticMetadata();
  test::SynthOptions options;
  options.finish = false;
  auto written =
      test::writeSyntheticArchive(path, metadata, test::syntheticChunks(metadata), options);
  ASSERT_TRUE(written.ok()) << written.error().message;
  auto strict = openSnapshot(path);
  ASSERT_FALSE(static_cast<bool>(strict));
  llvm::consumeError(strict.takeError());
  OpenOptions salvage;
  salvage.salvage = true;
  auto salvaged = openSnapshot(path, salvage);
  ASSERT_TRUE(static_cast<bool>(salvaged)) << llvm::toString(salvaged.takeError());
  std::vector<uint8_t> out(0x100);
  auto result = (*salvaged)->read(0x1000000, out);
  ASSERT_TRUE(static_cast<bool>(result)) << llvm::toString(result.takeError());
  EXPECT_EQ(result->bytes_stored, out.size());
  EXPECT_EQ(out[7], static_cast<uint8_t>(syntheticByte(0x1000007)));
}

} // namespace
} // namespace procsnap::analyze

// A real capture of the sample (procsnap-capture), read back through the Snapshot interface:
// every global the sample reports reads back exactly, and what was not stored says why.
namespace procsnap::analyze {
namespace {

class CapturedSampleReadTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto dir = test::TempDir::create("analyze-captured");
    if (!dir.ok())
      return;
    dir_ = new test::TempDir(std::move(dir.value()));
    auto sample = test::SampleProcess::start(test::SampleVariant::Pie);
    if (!sample.ok()) {
      ADD_FAILURE() << sample.error().message;
      return;
    }
    sample_ = sample->release();
    std::string path = dir_->file("sample.psnap");
    test::CommandResult capture = test::runCommand(
        {PROCSNAP_CAPTURE_BIN, "-q", "-o", path, std::to_string(sample_->pid())}, 60);
    if (capture.exit_code != 0) {
      ADD_FAILURE() << "capture failed: " << capture.err;
      return;
    }
    auto snapshot = openSnapshot(path);
    if (!snapshot) {
      ADD_FAILURE() << llvm::toString(snapshot.takeError());
      return;
    }
    snapshot_ = snapshot->release();
  }
  static void TearDownTestSuite() {
    delete snapshot_;
    delete sample_;
    delete dir_;
    snapshot_ = nullptr;
    sample_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(snapshot_, nullptr) << "no capture of the sample"; }

  static uint64_t address(const nlohmann::json& value) { return test::addressOf(value); }
  static std::string readString(uint64_t at, size_t size, ReadResult* runs = nullptr) {
    std::vector<uint8_t> bytes(size);
    auto result = snapshot_->read(at, bytes);
    if (!result) {
      ADD_FAILURE() << llvm::toString(result.takeError());
      return "";
    }
    if (runs)
      *runs = *result;
    return std::string(bytes.begin(), bytes.end());
  }

  static test::TempDir* dir_;
  static test::SampleProcess* sample_;
  static Snapshot* snapshot_;
};
test::TempDir* CapturedSampleReadTest::dir_ = nullptr;
test::SampleProcess* CapturedSampleReadTest::sample_ = nullptr;
Snapshot* CapturedSampleReadTest::snapshot_ = nullptr;

TEST_F(CapturedSampleReadTest, GlobalsHeapAndStacksReadBackExactly) {
  const nlohmann::json& truth = sample_->truth();
  uint64_t counter = 0;
  std::string counter_bytes = readString(address(truth["data_counter"]["addr"]), 8);
  std::memcpy(&counter, counter_bytes.data(), 8);
  EXPECT_EQ(counter, truth["data_counter"]["value"].get<uint64_t>());
  for (const char* key : {"data_message", "rodata_string", "heap_small", "heap_large", "memfd"}) {
    std::string expected = truth[key]["value"];
    ReadResult runs;
    EXPECT_EQ(readString(address(truth[key]["addr"]), expected.size(), &runs), expected) << key;
    EXPECT_TRUE(runs.allStored()) << key;
  }
  for (const auto& thread : truth["threads"]) {
    std::string expected = thread["stack_marker"];
    EXPECT_EQ(readString(address(thread["stack_marker_addr"]), expected.size()), expected);
  }
  // All of .bss, 4 MiB across the file mapping's tail and the anonymous mapping: more chunks
  // than the cache holds, each decompressed once.
  const uint64_t bss = address(truth["bss_array"]["addr"]);
  std::vector<uint8_t> bytes(truth["bss_array"]["size"].get<size_t>());
  auto result = snapshot_->read(bss, bytes);
  ASSERT_TRUE(static_cast<bool>(result)) << llvm::toString(result.takeError());
  EXPECT_EQ(result->bytes_stored, bytes.size());
  for (size_t i = 0; i < bytes.size() / 4; ++i) {
    uint32_t word;
    std::memcpy(&word, bytes.data() + i * 4, 4);
    ASSERT_EQ(word, static_cast<uint32_t>(i) ^ 0x5a5a5a5au) << "word " << i;
  }
}

TEST_F(CapturedSampleReadTest, WhatWasNotStoredSaysWhy) {
  const nlohmann::json& truth = sample_->truth();
  ReadResult runs;
  std::string secret = truth["dontdump"]["secret"];
  EXPECT_EQ(readString(address(truth["dontdump"]["addr"]), secret.size(), &runs),
            std::string(secret.size(), '\0'));
  ASSERT_EQ(runs.runs.size(), 1u);
  EXPECT_EQ(runs.runs[0].state, PageState::ExcludedDontDump);
  readString(address(truth["reservation"]["addr"]) + (1u << 20), 4096, &runs);
  ASSERT_EQ(runs.runs.size(), 1u);
  EXPECT_EQ(runs.runs[0].state, PageState::NotPresent);
  EXPECT_TRUE(runs.runs[0].mapped);
  EXPECT_EQ(runs.bytes_stored, 0u);
}

// export-core, then the core read back as a source: every byte the archive stores reads
// back the same from the core, and the core says it holds it (stored, not a hole).
TEST_F(CapturedSampleReadTest, ExportedCoreKeepsEveryStoredByte) {
  const std::string core_path = dir_->file("roundtrip.core");
  auto written = writeCore(*snapshot_, CoreWriteOptions{core_path, true, false});
  ASSERT_TRUE(static_cast<bool>(written)) << llvm::toString(written.takeError());
  auto core = openSnapshot(core_path);
  ASSERT_TRUE(static_cast<bool>(core)) << llvm::toString(core.takeError());
  EXPECT_EQ((*core)->sourceKind(), "core");
  EXPECT_EQ((*core)->metadata().threads.size(), snapshot_->metadata().threads.size());

  constexpr size_t kPiece = 1u << 20;
  std::vector<uint8_t> from_archive(kPiece), from_core(kPiece);
  uint64_t compared = 0;
  for (const StoredExtent& extent : snapshot_->storedExtents(0, ~uint64_t{0})) {
    for (uint64_t at = extent.start; at < extent.end; at += kPiece) {
      const size_t size = static_cast<size_t>(std::min<uint64_t>(kPiece, extent.end - at));
      llvm::MutableArrayRef<uint8_t> a(from_archive.data(), size), c(from_core.data(), size);
      auto archive_read = snapshot_->read(at, a);
      auto core_read = (*core)->read(at, c);
      ASSERT_TRUE(static_cast<bool>(archive_read)) << llvm::toString(archive_read.takeError());
      ASSERT_TRUE(static_cast<bool>(core_read)) << llvm::toString(core_read.takeError());
      ASSERT_EQ(std::memcmp(from_archive.data(), from_core.data(), size), 0)
          << "bytes differ in 0x" << std::hex << at << "+0x" << size;
      EXPECT_EQ(core_read->bytes_stored, size) << "not stored in the core at 0x" << std::hex << at;
      compared += size;
    }
  }
  EXPECT_EQ(compared, snapshot_->metadata().stats.bytes_stored);
}

} // namespace
} // namespace procsnap::analyze

namespace procsnap::analyze {
namespace {

// Issue 13: the chunk cache is bounded in bytes, not entries. Eight 4 MiB chunks read in turn
// with an 8 MiB cache keep at most two: an 8-entry cache kept all 32 MiB (and 512 MiB for
// 64 MiB chunks, which the format allows).
TEST(ArchiveSnapshotCache, BoundedInBytesWhateverTheChunkSize) {
  constexpr uint64_t kChunk = 4 << 20, kChunks = 8, kStart = 0x10000000;
  SnapshotMetadata metadata = test::syntheticMetadata();
  RegionRecord region = metadata.regions[2]; // the heap
  region.smaps.map.start = kStart;
  region.smaps.map.end = kStart + kChunk * kChunks;
  region.pages = {{kStart, kStart + kChunk * kChunks, PageState::Stored}};
  metadata.regions = {region};
  metadata.modules.clear();
  auto dir = test::TempDir::create("analyze-cache");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("big-chunks.psnap");
  ASSERT_TRUE(
      test::writeSyntheticArchive(path, metadata, test::syntheticChunks(metadata, kChunk)).ok());
  OpenOptions options;
  options.chunk_cache_bytes = 2 * kChunk;
  auto snapshot = openSnapshot(path, options);
  ASSERT_TRUE(static_cast<bool>(snapshot)) << llvm::toString(snapshot.takeError());
  auto* archive = static_cast<ArchiveSnapshot*>(snapshot->get());
  std::vector<uint8_t> out(16);
  const long growth = test::peakGrowth([&] {
    for (uint64_t i = 0; i < kChunks; ++i)
      if (!archive->read(kStart + i * kChunk, out))
        std::abort();
  });
  EXPECT_GE(growth, 0);
  EXPECT_LT(growth, static_cast<long>(4 * kChunk)) << "peak memory grew by " << growth;
  // Still a cache (peakGrowth ran in a child: this process reads afresh): the last chunk
  // read is kept, the first one was evicted.
  for (uint64_t i = 0; i < kChunks; ++i)
    ASSERT_TRUE(static_cast<bool>(archive->read(kStart + i * kChunk, out)));
  EXPECT_EQ(archive->chunksDecompressed(), kChunks);
  const uint64_t decompressed = archive->chunksDecompressed();
  ASSERT_TRUE(static_cast<bool>(archive->read(kStart + (kChunks - 1) * kChunk, out)));
  EXPECT_EQ(archive->chunksDecompressed(), decompressed);
  ASSERT_TRUE(static_cast<bool>(archive->read(kStart, out)));
  EXPECT_EQ(archive->chunksDecompressed(), decompressed + 1);
  EXPECT_EQ(out[0], static_cast<uint8_t>(test::syntheticByte(kStart)));
}

} // namespace
} // namespace procsnap::analyze
