#include "common/archive/format.h"
#include "common/archive/reader.h"
#include "common/archive/writer.h"
#include "tests/support/archive_synth.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <unistd.h>

namespace procsnap {
namespace {

using test::TempDir;

std::vector<std::byte> randomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<std::byte> bytes(size);
  for (auto& b : bytes)
    b = static_cast<std::byte>(random());
  return bytes;
}

std::vector<std::byte> textLikeBytes(size_t size) {
  static constexpr std::string_view kText =
      "the quick brown fox jumps over the lazy dog 0123456789\n";
  std::vector<std::byte> bytes(size);
  for (size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<std::byte>(kText[i % kText.size()]);
  return bytes;
}

struct Written {
  uint64_t address;
  std::vector<std::byte> bytes;
};

ModuleSketch sketchWithPieces() {
  ModuleSketch sketch;
  sketch.record.path = "/usr/lib/libsketch.so";
  sketch.record.build_id = "beef";
  sketch.record.file_size = 100000;
  sketch.record.load_address = 0x7f0000000000;
  sketch.record.source = "map_files";
  sketch.file_size = 100000;
  sketch.pieces.push_back({0, randomBytes(64, 1)});
  sketch.pieces.push_back({64, textLikeBytes(0x1000)});
  sketch.pieces.push_back({90000, randomBytes(10000, 2)});
  return sketch;
}

void expectSameSketch(const ModuleSketch& a, const ModuleSketch& b) {
  EXPECT_EQ(a.record.path, b.record.path);
  EXPECT_EQ(a.record.build_id, b.record.build_id);
  EXPECT_EQ(a.record.embedded, b.record.embedded);
  EXPECT_EQ(a.file_size, b.file_size);
  ASSERT_EQ(a.pieces.size(), b.pieces.size());
  for (size_t i = 0; i < a.pieces.size(); ++i) {
    EXPECT_EQ(a.pieces[i].offset, b.pieces[i].offset);
    EXPECT_TRUE(a.pieces[i].bytes == b.pieces[i].bytes) << "piece " << i;
  }
}

TEST(ArchiveRoundTrip, WritesAndReadsBackEverything) {
  auto dir = TempDir::create("archive-roundtrip");
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  const std::string path = dir->file("a.psnap");

  SnapshotMetadata metadata = test::syntheticMetadata();
  std::vector<Written> written = {
      {0x10000000, randomBytes(kChunkSize, 7)},
      {0x10000000 + kChunkSize, std::vector<std::byte>(kChunkSize)}, // all zero
      {0x20000000, textLikeBytes(kChunkSize)},
      {0x5000, randomBytes(5000, 9)}, // short, unaligned end, written out of order
      {0xffffffffff600000, randomBytes(4096, 10)},
  };
  auto embedded = test::embeddedModuleSketch("/usr/bin/true");
  ASSERT_TRUE(embedded.ok()) << embedded.error().message;
  const std::vector<ModuleSketch> sketches = {sketchWithPieces(), *embedded};

  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  {
    ArchiveWriter writer(fd);
    ChunkCompressor compressor(3);
    ASSERT_TRUE(writer.writeHeader().ok());
    ASSERT_TRUE(writer.writeMetadata(metadata).ok());
    ASSERT_TRUE(writer.writeModule(sketches[0]).ok());
    for (const auto& w : written) {
      auto chunk = compressor.compress(w.address, w.bytes);
      ASSERT_TRUE(chunk.ok()) << chunk.error().message;
      EXPECT_EQ(chunk->content_hash, contentHash(w.bytes));
      auto result = writer.writeChunk(*chunk);
      ASSERT_TRUE(result.ok()) << result.error().message;
    }
    ASSERT_TRUE(writer.writeModule(sketches[1]).ok());
    CaptureStats stats;
    stats.pause_seconds = 0.25;
    stats.chunks = static_cast<uint32_t>(written.size());
    stats.bytes_skipped["not-present"] = 12345;
    ASSERT_TRUE(writer.writeStats(stats).ok());
    ASSERT_TRUE(writer.finish().ok());
    EXPECT_EQ(static_cast<off_t>(writer.bytesWritten()), ::lseek(fd, 0, SEEK_END));
  }
  ::close(fd);

  // The fixed parts, byte by byte.
  auto bytes = test::readFileBytes(path);
  ASSERT_TRUE(bytes.ok());
  ASSERT_GT(bytes->size(), 48u);
  const unsigned char header[16] = {0x89, 'P', 'S', 'N', 'A', 'P', '\r', '\n',
                                    1,    0,   0,   0,   0,   0,   0,    0};
  EXPECT_EQ(std::memcmp(bytes->data(), header, 16), 0);
  EXPECT_EQ(std::memcmp(bytes->data() + 16, "PBLK\x01\x00\x01\x00", 8), 0); // metadata, zstd
  const std::byte* trailer = bytes->data() + bytes->size() - 32;
  EXPECT_EQ(std::memcmp(trailer, "PSNAPEND", 8), 0);
  EXPECT_EQ(format::loadU64(trailer + 16), bytes->size());

  auto reader = ArchiveReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  ArchiveReader& r = **reader;
  EXPECT_EQ(r.formatVersion(), 1u);
  EXPECT_TRUE(r.complete());
  EXPECT_FALSE(r.salvaged());
  EXPECT_EQ(r.fileSize(), bytes->size());
  EXPECT_EQ(r.metadata().process.pid, 4242);
  EXPECT_EQ(r.metadata().regions.size(), metadata.regions.size());
  EXPECT_EQ(r.metadata().stats.pause_seconds, 0.25); // replaced by the STATS block
  EXPECT_EQ(r.metadata().stats.bytes_skipped.at("not-present"), 12345u);
  EXPECT_FALSE(r.metadata().partial);

  ASSERT_EQ(r.chunks().size(), written.size());
  for (size_t i = 1; i < r.chunks().size(); ++i)
    EXPECT_LT(r.chunks()[i - 1].address, r.chunks()[i].address);
  for (const auto& w : written) {
    const ChunkInfo* chunk = r.findChunk(w.address);
    ASSERT_NE(chunk, nullptr);
    EXPECT_EQ(chunk->address, w.address);
    EXPECT_EQ(chunk->size, w.bytes.size());
    EXPECT_EQ(chunk->content_hash, contentHash(w.bytes));
    EXPECT_EQ(r.findChunk(w.address + w.bytes.size() - 1), chunk);
    std::vector<std::byte> out(chunk->size);
    auto read = r.readChunk(*chunk, out);
    ASSERT_TRUE(read.ok()) << read.error().message;
    EXPECT_TRUE(out == w.bytes) << "chunk at " << w.address;
  }
  EXPECT_EQ(r.findChunk(0), nullptr);
  EXPECT_EQ(r.findChunk(0x5000 + 5000), nullptr);
  EXPECT_EQ(r.findChunk(0x20000000 + kChunkSize), nullptr);
  EXPECT_EQ(r.findChunk(0x10000000 + 2 * kChunkSize), nullptr);
  EXPECT_EQ(r.findChunk(0x10000000 + kChunkSize)->address, 0x10000000 + kChunkSize);

  // Zero chunk compresses to almost nothing; random data does not compress.
  EXPECT_LT(r.findChunk(0x10000000 + kChunkSize)->stored_size, 1000u);
  EXPECT_GT(r.findChunk(0x10000000)->stored_size, kChunkSize);

  std::vector<std::byte> small(10);
  auto too_small = r.readChunk(r.chunks()[0], small);
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.error().code, ErrorCode::InvalidArgument);

  ASSERT_EQ(r.modules().size(), 2u);
  for (size_t i = 0; i < sketches.size(); ++i) {
    EXPECT_EQ(r.modules()[i].record.path, sketches[i].record.path);
    EXPECT_EQ(r.modules()[i].file_size, sketches[i].file_size);
    auto sketch = r.readModule(i);
    ASSERT_TRUE(sketch.ok()) << sketch.error().message;
    expectSameSketch(sketches[i], *sketch);
  }
  EXPECT_FALSE(r.readModule(2).ok());

  uint64_t last_progress = 0;
  const VerifyReport report = r.verify([&](uint64_t done, uint64_t total) {
    EXPECT_LE(done, total);
    last_progress = done;
  });
  EXPECT_TRUE(report.ok());
  EXPECT_TRUE(report.header_ok && report.trailer_ok && report.index_ok);
  EXPECT_EQ(report.chunks_checked, written.size());
  EXPECT_EQ(report.blocks_intact, 1 + 2 + written.size() + 1 + 1); // + index
  EXPECT_EQ(report.blocks_damaged, 0u);
  EXPECT_EQ(report.intact_prefix, bytes->size());
  EXPECT_EQ(last_progress, bytes->size());
}

TEST(ArchiveRoundTrip, SyntheticArchiveReadsBackItsPattern) {
  auto dir = TempDir::create("archive-synth");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("s.psnap");
  auto metadata = test::writeDefaultSyntheticArchive(path);
  ASSERT_TRUE(metadata.ok()) << metadata.error().message;
  auto reader = ArchiveReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  uint64_t stored = 0;
  for (const auto& region : (*reader)->metadata().regions)
    for (const auto& run : region.pages)
      if (run.state == PageState::Stored)
        stored += run.end - run.start;
  uint64_t in_chunks = 0;
  for (const auto& chunk : (*reader)->chunks()) {
    std::vector<std::byte> out(chunk.size);
    ASSERT_TRUE((*reader)->readChunk(chunk, out).ok());
    for (size_t i = 0; i < out.size(); i += 511)
      ASSERT_EQ(out[i], test::syntheticByte(chunk.address + i));
    in_chunks += chunk.size;
  }
  EXPECT_EQ(stored, in_chunks);
  EXPECT_EQ((*reader)->metadata().stats.chunks, (*reader)->chunks().size());
  EXPECT_TRUE((*reader)->verify().ok());
}

TEST(ArchiveRoundTrip, PartialCaptureShowsInMetadataAndTrailer) {
  auto dir = TempDir::create("archive-partial");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("p.psnap");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  {
    ArchiveWriter writer(fd);
    ASSERT_TRUE(writer.writeHeader().ok());
    ASSERT_TRUE(writer.writeMetadata(test::syntheticMetadata()).ok());
    writer.setPartial("the target exited during the copy");
    ASSERT_TRUE(writer.writeStats(CaptureStats{}).ok());
    ASSERT_TRUE(writer.finish().ok());
  }
  ::close(fd);
  auto bytes = test::readFileBytes(path);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(format::loadU32(bytes->data() + bytes->size() - 8), format::kTrailerFlagPartial);
  auto reader = ArchiveReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_TRUE((*reader)->metadata().partial);
  EXPECT_EQ((*reader)->metadata().partial_reason, "the target exited during the copy");
  EXPECT_TRUE((*reader)->chunks().empty());
  EXPECT_TRUE((*reader)->verify().ok());
}

TEST(ArchiveWriter, RefusesMisuse) {
  auto dir = TempDir::create("archive-misuse");
  ASSERT_TRUE(dir.ok());
  const int fd = ::open(dir->file("m.psnap").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ArchiveWriter writer(fd);
  ChunkCompressor compressor(1);
  auto chunk = compressor.compress(0x1000, randomBytes(8192, 3));
  ASSERT_TRUE(chunk.ok());
  auto early = writer.writeChunk(*chunk);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, ErrorCode::InvalidArgument);
  EXPECT_FALSE(writer.writeMetadata(SnapshotMetadata{}).ok()); // before the header
  ASSERT_TRUE(writer.writeHeader().ok());
  EXPECT_FALSE(writer.writeHeader().ok());
  ASSERT_TRUE(writer.writeMetadata(SnapshotMetadata{}).ok());
  ASSERT_TRUE(writer.writeChunk(*chunk).ok());
  auto overlap = compressor.compress(0x2000, randomBytes(100, 4));
  ASSERT_TRUE(overlap.ok());
  auto refused = writer.writeChunk(*overlap);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("overlaps"), std::string::npos);
  auto below = compressor.compress(0x0, randomBytes(0x1001, 5));
  ASSERT_TRUE(below.ok());
  EXPECT_FALSE(writer.writeChunk(*below).ok());
  auto after = compressor.compress(0x3000, randomBytes(100, 6));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(writer.writeChunk(*after).ok());
  CompressedChunk lying = *after;
  lying.address = 0x9000;
  lying.size = 99; // the frame says 100
  EXPECT_FALSE(writer.writeChunk(lying).ok());
  EXPECT_FALSE(compressor.compress(0x1000, {}).ok());
  EXPECT_FALSE(compressor.compress(0xfffffffffffff000, randomBytes(0x2000, 1)).ok());

  ModuleSketch bad = sketchWithPieces();
  bad.pieces[1].offset = 10; // overlaps piece 0
  EXPECT_FALSE(writer.writeModule(bad).ok());
  ASSERT_TRUE(writer.finish().ok());
  EXPECT_FALSE(writer.writeStats(CaptureStats{}).ok());
  EXPECT_FALSE(writer.finish().ok());
  ::close(fd);
}

// Opening a big archive reads the trailer, the index and the metadata only: 10 000 chunks of
// 1 MiB each (10 GiB of memory) should open in milliseconds.
TEST(ArchiveReader, OpensTenThousandChunksQuickly) {
  auto dir = TempDir::create("archive-big");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("big.psnap");
  constexpr uint32_t kChunks = 10000;
  SnapshotMetadata metadata = test::syntheticMetadata();
  // A realistic number of regions: ~1000.
  metadata.regions.clear();
  for (uint64_t i = 0; i < 1000; ++i) {
    RegionRecord region;
    region.smaps.map.start = 0x100000000 + i * 0x100000;
    region.smaps.map.end = region.smaps.map.start + 0x80000;
    region.smaps.map.perms.read = true;
    region.smaps.fields = {
        {"Size", 512},       {"Rss", 256},         {"Pss", 256},           {"Shared_Clean", 0},
        {"Shared_Dirty", 0}, {"Private_Clean", 0}, {"Private_Dirty", 256}, {"Referenced", 256},
        {"Anonymous", 256},  {"Swap", 0}};
    region.smaps.vm_flags = {"rd", "wr", "mr", "mw", "me", "ac"};
    region.pages = {
        {region.smaps.map.start, region.smaps.map.start + 0x40000, PageState::Stored},
        {region.smaps.map.start + 0x40000, region.smaps.map.end, PageState::NotPresent}};
    metadata.regions.push_back(region);
  }
  ChunkCompressor compressor(1);
  const std::vector<std::byte> zeros(kChunkSize);
  auto zero_chunk = compressor.compress(0, zeros);
  ASSERT_TRUE(zero_chunk.ok());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  {
    ArchiveWriter writer(fd);
    ASSERT_TRUE(writer.writeHeader().ok());
    ASSERT_TRUE(writer.writeMetadata(metadata).ok());
    CompressedChunk chunk = *zero_chunk;
    for (uint32_t i = 0; i < kChunks; ++i) {
      chunk.address = 0x100000000000 + uint64_t{i} * kChunkSize;
      ASSERT_TRUE(writer.writeChunk(chunk).ok());
    }
    ASSERT_TRUE(writer.writeStats(CaptureStats{}).ok());
    ASSERT_TRUE(writer.finish().ok());
  }
  ::close(fd);

  double best_ms = 1e9;
  for (int round = 0; round < 3; ++round) {
    const auto start = std::chrono::steady_clock::now();
    auto reader = ArchiveReader::open(path);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    ASSERT_EQ((*reader)->chunks().size(), kChunks);
    ASSERT_EQ((*reader)->metadata().regions.size(), 1000u);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(elapsed).count());
    const ChunkInfo* last =
        (*reader)->findChunk(0x100000000000 + uint64_t{kChunks} * kChunkSize - 1);
    ASSERT_NE(last, nullptr);
    std::vector<std::byte> out(last->size);
    ASSERT_TRUE((*reader)->readChunk(*last, out).ok());
  }
  std::printf("[ figure ] open of %u chunks (%.1f GiB of memory) + 1000-region metadata: %.2f ms\n",
              kChunks, kChunks / 1024.0, best_ms);
  EXPECT_LT(best_ms, 1000.0); // generous: a debug or sanitizer build on a shared machine
}

} // namespace
} // namespace procsnap
