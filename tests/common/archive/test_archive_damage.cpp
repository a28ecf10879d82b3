// Truncated, damaged and hostile archives: clear errors, salvage of what is intact, no crash
// and no big allocation.
#include "common/archive/format.h"
#include "common/archive/metadata_codec.h"
#include "common/archive/reader.h"
#include "tests/support/archive_synth.h"
#include "tests/support/peak_growth.h"
#include "tests/support/raw_archive.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstring>
#include <functional>
#include <random>

namespace procsnap {
namespace {

using test::RawArchive;
using test::TempDir;
using Bytes = std::vector<std::byte>;

// A small complete archive: metadata, one module, ~12 chunks of 8 KiB, stats, index, trailer.
class DamageTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = TempDir::create("archive-damage");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    path_ = dir_->file("good.psnap");
    metadata_ = test::syntheticMetadata();
    // Fewer stored pages than the default, so that damaging every 97th byte stays quick.
    for (auto& region : metadata_.regions)
      if (region.kind == RegionKind::Heap)
        region.pages = {{0x1000000, 0x1002000, PageState::Stored},
                        {0x1002000, 0x1010000, PageState::NotPresent}};
    test::SynthOptions options;
    ModuleSketch sketch;
    sketch.record.path = "/synthetic/bin";
    sketch.file_size = 0x3000;
    sketch.pieces.push_back({0, Bytes(64, std::byte{0x7f})});
    sketch.pieces.push_back({0x2000, Bytes(0x100, std::byte{1})});
    options.modules.push_back(sketch);
    ASSERT_TRUE(test::writeSyntheticArchive(path_, metadata_,
                                            test::syntheticChunks(metadata_, 4096), options)
                    .ok());
    auto bytes = test::readFileBytes(path_);
    ASSERT_TRUE(bytes.ok());
    good_ = std::move(*bytes);
    auto reader = ArchiveReader::open(path_);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    good_chunks_ = (*reader)->chunks();
    ASSERT_GE(good_chunks_.size(), 8u);
  }

  std::string writeVariant(const Bytes& bytes, const char* name = "variant.psnap") {
    const std::string path = dir_->file(name);
    EXPECT_TRUE(test::writeFileBytes(path, bytes).ok());
    return path;
  }

  // Every chunk the reader lists must read back as the synthetic pattern or fail as Corrupt.
  static void expectChunksReadOrCorrupt(const ArchiveReader& reader, bool must_read) {
    for (const auto& chunk : reader.chunks()) {
      Bytes out(chunk.size);
      auto read = reader.readChunk(chunk, out);
      if (must_read) {
        ASSERT_TRUE(read.ok()) << read.error().message;
      }
      if (!read.ok()) {
        EXPECT_EQ(read.error().code, ErrorCode::Corrupt);
        continue;
      }
      for (size_t i = 0; i < out.size(); i += 97)
        ASSERT_EQ(out[i], test::syntheticByte(chunk.address + i));
    }
  }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
  SnapshotMetadata metadata_;
  Bytes good_;
  std::vector<ChunkInfo> good_chunks_;
};

TEST_F(DamageTest, TruncationIsReportedAndSalvaged) {
  for (size_t cut = 97; cut < good_.size(); cut += 97) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const Bytes prefix(good_.begin(), good_.begin() + static_cast<ptrdiff_t>(cut));
    const std::string path = writeVariant(prefix);
    auto strict = ArchiveReader::open(path);
    ASSERT_FALSE(strict.ok());
    EXPECT_EQ(strict.error().code, ErrorCode::Truncated) << strict.error().message;
    EXPECT_NE(strict.error().message.find("archive is truncated: "), std::string::npos)
        << strict.error().message;
    EXPECT_NE(strict.error().message.find(" of " + std::to_string(cut) + " bytes intact"),
              std::string::npos)
        << strict.error().message;

    auto salvaged = ArchiveReader::open(path, OpenMode::Salvage);
    ASSERT_TRUE(salvaged.ok()) << salvaged.error().message;
    const ArchiveReader& r = **salvaged;
    EXPECT_TRUE(r.salvaged());
    EXPECT_FALSE(r.complete());
    EXPECT_TRUE(r.metadata().partial);
    size_t expected = 0;
    for (const auto& chunk : good_chunks_)
      if (chunk.block_offset + format::kBlockHeaderSize + format::kChunkPrefixSize +
              chunk.stored_size <=
          cut)
        ++expected;
    EXPECT_EQ(r.chunks().size(), expected);
    expectChunksReadOrCorrupt(r, true);
    const bool metadata_intact = r.metadata().process.pid == 4242;
    if (cut > 2000) { // the metadata block is the first, and small
      EXPECT_TRUE(metadata_intact);
    }
    if (metadata_intact) {
      EXPECT_EQ(r.metadata().regions.size(), metadata_.regions.size());
    }
    if (cut % 5 == 0) {
      const VerifyReport report = r.verify();
      EXPECT_FALSE(report.ok());
      EXPECT_FALSE(report.trailer_ok);
    }
  }
}

TEST_F(DamageTest, EveryFlippedBitIsCaught) {
  std::mt19937_64 random(1234);
  std::vector<size_t> positions = {0, 8, 12, 16, 20, 44, 47};
  for (size_t i = 0; i < 32; ++i)
    positions.push_back(good_.size() - 1 - i); // all of the trailer
  for (int i = 0; i < 250; ++i)
    positions.push_back(random() % good_.size());
  for (size_t position : positions) {
    const int bit = static_cast<int>(random() % 8);
    SCOPED_TRACE("bit " + std::to_string(bit) + " of byte " + std::to_string(position));
    Bytes damaged = good_;
    damaged[position] ^= static_cast<std::byte>(1 << bit);
    const std::string path = writeVariant(damaged);
    auto strict = ArchiveReader::open(path);
    if (strict.ok()) {
      const VerifyReport report = (*strict)->verify();
      EXPECT_FALSE(report.ok());
      EXPECT_GE(report.blocks_damaged, 1u);
      ASSERT_FALSE(report.damaged.empty());
      EXPECT_FALSE(report.damaged[0].problem.empty());
      EXPECT_LE(report.intact_prefix, position + 1);
      expectChunksReadOrCorrupt(**strict, false);
    } else {
      EXPECT_NE(strict.error().code, ErrorCode::Generic) << strict.error().message;
    }
    auto salvaged = ArchiveReader::open(path, OpenMode::Salvage);
    if (salvaged.ok()) {
      expectChunksReadOrCorrupt(**salvaged, false);
      EXPECT_GE((*salvaged)->chunks().size(), good_chunks_.size() - 1);
    } else {
      EXPECT_LT(position, format::kFileHeaderSize); // only a bad file header stops salvage
    }
  }
}

TEST_F(DamageTest, SalvageSkipsADamagedBlockInTheMiddle) {
  Bytes damaged = good_;
  const ChunkInfo& victim = good_chunks_[good_chunks_.size() / 2];
  damaged[victim.block_offset + 2] ^= std::byte{0x40}; // the block magic
  const std::string path = writeVariant(damaged);
  auto strict = ArchiveReader::open(path);
  ASSERT_TRUE(strict.ok()); // the index does not look at chunk blocks
  Bytes out(victim.size);
  auto read = (*strict)->readChunk(*(*strict)->findChunk(victim.address), out);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::Corrupt);
  const VerifyReport report = (*strict)->verify();
  EXPECT_FALSE(report.ok());
  EXPECT_TRUE(report.trailer_ok);
  EXPECT_FALSE(report.index_ok); // it lists a block the walk could not find
  ASSERT_FALSE(report.damaged.empty());
  EXPECT_EQ(report.damaged[0].offset, victim.block_offset);
  EXPECT_EQ(report.intact_prefix, victim.block_offset);

  // Damage the trailer too, so that open must scan.
  damaged[damaged.size() - 1] ^= std::byte{1};
  const std::string path2 = writeVariant(damaged, "two.psnap");
  auto failed = ArchiveReader::open(path2);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::Corrupt);
  EXPECT_NE(failed.error().message.find("open with --salvage"), std::string::npos)
      << failed.error().message;
  auto salvaged = ArchiveReader::open(path2, OpenMode::Salvage);
  ASSERT_TRUE(salvaged.ok()) << salvaged.error().message;
  EXPECT_EQ((*salvaged)->chunks().size(), good_chunks_.size() - 1);
  EXPECT_EQ((*salvaged)->findChunk(victim.address), nullptr);
  EXPECT_EQ((*salvaged)->modules().size(), 1u);
  expectChunksReadOrCorrupt(**salvaged, true);
  bool warned = false;
  for (const auto& warning : (*salvaged)->metadata().warnings)
    warned |= warning.find("salvage: ") == 0;
  EXPECT_TRUE(warned);
}

TEST_F(DamageTest, BadMagicFutureVersionAndUnknownFlags) {
  Bytes bytes = good_;
  bytes[1] = std::byte{'X'};
  auto magic = ArchiveReader::open(writeVariant(bytes), OpenMode::Salvage);
  ASSERT_FALSE(magic.ok());
  EXPECT_EQ(magic.error().code, ErrorCode::Malformed);
  EXPECT_NE(magic.error().message.find("not a procsnap archive"), std::string::npos);

  bytes = good_;
  format::storeU32(bytes.data() + 8, 2);
  auto version = ArchiveReader::open(writeVariant(bytes), OpenMode::Salvage);
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.error().code, ErrorCode::Unsupported);
  EXPECT_NE(version.error().message.find("unsupported archive format version 2 (this build "
                                         "reads 1)"),
            std::string::npos)
      << version.error().message;

  bytes = good_;
  format::storeU32(bytes.data() + 12, 0x10);
  auto flags = ArchiveReader::open(writeVariant(bytes));
  ASSERT_FALSE(flags.ok());
  EXPECT_EQ(flags.error().code, ErrorCode::Unsupported);
  EXPECT_NE(flags.error().message.find("unknown flags 0x10"), std::string::npos);

  for (const char* text : {"", "\x89PSN", "hello, this is not an archive at all"}) {
    auto other = ArchiveReader::open(
        writeVariant(Bytes(reinterpret_cast<const std::byte*>(text),
                           reinterpret_cast<const std::byte*>(text) + std::strlen(text))));
    ASSERT_FALSE(other.ok());
    EXPECT_TRUE(other.error().code == ErrorCode::Malformed ||
                other.error().code == ErrorCode::Truncated)
        << other.error().message;
  }
  auto elf = ArchiveReader::open("/proc/self/exe");
  ASSERT_FALSE(elf.ok());
  EXPECT_NE(elf.error().message.find("not a procsnap archive"), std::string::npos);
  auto missing = ArchiveReader::open(dir_->file("missing.psnap"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
  auto directory = ArchiveReader::open(dir_->path());
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.error().message.find("not a regular file"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Hostile archives, built block by block (test::RawArchive) so that every checksum holds and
// only the reader's own validation stands between a lying size and a big allocation.

// A zstd frame that declares `declared` bytes of content but holds one raw byte.
Bytes lyingFrame(uint64_t declared) {
  Bytes frame = {std::byte{0x28}, std::byte{0xb5}, std::byte{0x2f}, std::byte{0xfd},
                 std::byte{0xe0}}; // single segment, 8-byte content size
  frame.resize(frame.size() + 8);
  format::storeU64(frame.data() + 5, declared);
  for (int b : {0x09, 0x00, 0x00, 0x41}) // last block, raw, 1 byte: 'A'
    frame.push_back(static_cast<std::byte>(b));
  return frame;
}

// No hostile archive may make the reader grow by more than this.
constexpr long kAllocationAllowance = 48l << 20;

struct HostileCase {
  std::string name;
  Bytes bytes;
  ErrorCode code;
  std::string message_part;
};

std::vector<HostileCase> hostileCases() {
  const std::string metadata = encodeMetadata(test::syntheticMetadata());
  std::vector<HostileCase> cases;
  auto base = [&] {
    RawArchive raw;
    raw.addDocument(format::BlockType::Metadata, metadata);
    return raw;
  };
  {
    RawArchive raw = base();
    raw.addChunk(0x1000, Bytes(4096, std::byte{1}));
    cases.push_back({"index count", raw.finish(1ull << 60), ErrorCode::Corrupt, "index declares"});
  }
  {
    RawArchive raw = base();
    raw.addChunk(0x1000, Bytes(4096, std::byte{1})).uncompressed_size = 1ull << 40;
    cases.push_back({"chunk size", raw.finish(), ErrorCode::Corrupt, "outside 1.."});
  }
  {
    RawArchive raw = base();
    raw.addChunk(0x1000, Bytes(4096, std::byte{1})).block_size = 1ull << 62;
    cases.push_back({"block size", raw.finish(), ErrorCode::Corrupt, "impossible size"});
  }
  {
    RawArchive raw = base();
    raw.addChunk(0x1000, Bytes(4096, std::byte{1}));
    raw.addChunk(0x1800, Bytes(4096, std::byte{2}));
    cases.push_back({"overlap", raw.finish(), ErrorCode::Corrupt, "overlapping chunks"});
  }
  {
    RawArchive raw = base();
    raw.addChunk(0xfffffffffffff800, Bytes(4096, std::byte{1})).address = 0xfffffffffffff800;
    cases.push_back({"wrap", raw.finish(), ErrorCode::Corrupt, "end of the address space"});
  }
  {
    RawArchive raw = base();
    raw.addChunk(0x1000, Bytes(4096, std::byte{1})).block_offset += 1;
    cases.push_back({"gap", raw.finish(), ErrorCode::Corrupt, "does not start where"});
  }
  {
    RawArchive raw;
    raw.add(format::BlockType::Metadata, format::kBlockFlagZstdPayload, lyingFrame(200ull << 20),
            200ull << 20);
    cases.push_back({"lying metadata frame", raw.finish(), ErrorCode::Corrupt, "metadata"});
  }
  {
    RawArchive raw;
    raw.add(format::BlockType::Metadata, format::kBlockFlagZstdPayload, lyingFrame(1ull << 40), 0);
    cases.push_back(
        {"huge metadata frame", raw.finish(), ErrorCode::Corrupt, "more than the limit"});
  }
  {
    RawArchive raw;
    raw.addDocument(format::BlockType::Metadata, "{\"regions\": 5}");
    cases.push_back({"bad metadata json", raw.finish(), ErrorCode::Malformed, "expected an array"});
  }
  {
    RawArchive raw;
    raw.addChunk(0x1000, Bytes(4096, std::byte{1}));
    cases.push_back({"no metadata", raw.finish(), ErrorCode::Corrupt, "no metadata block"});
  }
  {
    RawArchive raw = base();
    Bytes module(4);
    format::storeU32(module.data(), 0xfffffff0); // a JSON length far beyond the payload
    module.resize(64, std::byte{'x'});
    Bytes frame(ZSTD_compressBound(module.size()));
    frame.resize(ZSTD_compress(frame.data(), frame.size(), module.data(), module.size(), 1));
    raw.add(format::BlockType::Module, format::kBlockFlagZstdPayload, frame, module.size());
    cases.push_back({"module json length", raw.finish(), ErrorCode::Corrupt, "is impossible"});
  }
  {
    RawArchive raw = base();
    raw.add(format::BlockType::Module, format::kBlockFlagZstdPayload, lyingFrame(3ull << 30),
            3ull << 30);
    cases.push_back({"lying module frame", raw.finish(), ErrorCode::Corrupt, "module"});
  }
  {
    RawArchive raw = base();
    Bytes bytes = raw.finish();
    format::encodeTrailer({1ull << 50, bytes.size(), 0}, bytes.data() + bytes.size() - 32);
    cases.push_back({"trailer index offset", bytes, ErrorCode::Corrupt, "outside the file"});
  }
  {
    RawArchive raw = base();
    Bytes bytes = raw.finish();
    format::encodeTrailer({16, 1ull << 50, 0}, bytes.data() + bytes.size() - 32);
    cases.push_back({"trailer file size", bytes, ErrorCode::Corrupt, "records a file size"});
  }
  return cases;
}

TEST(ArchiveHostile, LyingSizesGiveCleanErrorsWithoutBigAllocations) {
  auto dir = TempDir::create("archive-hostile");
  ASSERT_TRUE(dir.ok());
  for (const auto& c : hostileCases()) {
    SCOPED_TRACE(c.name);
    const std::string path = dir->file("hostile.psnap");
    ASSERT_TRUE(test::writeFileBytes(path, c.bytes).ok());
    auto strict = ArchiveReader::open(path);
    ASSERT_FALSE(strict.ok());
    EXPECT_EQ(strict.error().code, c.code) << strict.error().message;
    EXPECT_NE(strict.error().message.find(c.message_part), std::string::npos)
        << strict.error().message;
    EXPECT_EQ(strict.error().message.find('\n'), std::string::npos);
    const long growth = test::peakGrowth([&] {
      auto again = ArchiveReader::open(path);
      auto salvaged = ArchiveReader::open(path, OpenMode::Salvage);
      if (salvaged.ok()) {
        (void)(*salvaged)->verify();
        for (size_t i = 0; i < (*salvaged)->modules().size(); ++i)
          (void)(*salvaged)->readModule(i);
      }
    });
    EXPECT_GE(growth, 0);
    EXPECT_LT(growth, kAllocationAllowance) << "peak memory grew by " << growth << " bytes";
  }
}

// A damaged block header whose checksum still holds cannot happen by accident; a forged one
// that claims a huge payload must not stop a scan from finding the blocks after it.
TEST(ArchiveHostile, SalvageResyncsAfterAForgedHugeBlock) {
  RawArchive raw;
  raw.addDocument(format::BlockType::Metadata, encodeMetadata(test::syntheticMetadata()));
  raw.add(static_cast<format::BlockType>(99), 0, Bytes(10, std::byte{0}));
  raw.addChunk(0x1000, Bytes(4096, std::byte{3}));
  Bytes bytes = raw.finish();
  // Forge the unknown block's header: 2^62 bytes of payload, checksum recomputed.
  size_t at = 16;
  at += 32 + format::loadU64(bytes.data() + at + 8); // skip metadata
  format::BlockHeader header{99, 0, 1ull << 62, 0};
  format::encodeBlockHeader(header, bytes.data() + at);
  auto dir = TempDir::create("archive-forged");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("forged.psnap");
  ASSERT_TRUE(test::writeFileBytes(path, bytes).ok());
  auto reader = ArchiveReader::open(path, OpenMode::Salvage);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_EQ((*reader)->chunks().size(), 1u);
  EXPECT_EQ((*reader)->metadata().process.pid, 4242);
  const VerifyReport report = (*reader)->verify();
  EXPECT_FALSE(report.ok());
  ASSERT_FALSE(report.damaged.empty());
  EXPECT_EQ(report.damaged[0].offset, at);
}

} // namespace
} // namespace procsnap

namespace procsnap {
namespace {

// Issue 13: verify runs every check strict open runs. Each forged archive here (checksums all
// hold) is refused by a strict open and reported damaged by verify, which opens in salvage
// mode; before, verify said "intact" to all four.
TEST(ArchiveHostile, VerifyRefusesWhatStrictOpenRefuses) {
  const std::string metadata = encodeMetadata(test::syntheticMetadata());
  const Bytes page(4096, std::byte{7});
  // A skippable zstd frame (magic 0x184d2a50, 4 bytes of content) after the chunk's frame.
  const Bytes skippable = {std::byte{0x50}, std::byte{0x2a}, std::byte{0x4d}, std::byte{0x18},
                           std::byte{4},    std::byte{0},    std::byte{0},    std::byte{0},
                           std::byte{'h'},  std::byte{'i'},  std::byte{'d'},  std::byte{'e'}};
  struct Case {
    std::string name;
    std::function<void(RawArchive&)> add_chunks;
  };
  const Case cases[] = {
      {"overlapping chunks",
       [&](RawArchive& raw) {
         raw.addChunk(0x1000, page);
         raw.addChunk(0x1800, page);
       }},
      {"duplicated chunk",
       [&](RawArchive& raw) {
         raw.addChunk(0x1000, page);
         raw.addChunk(0x1000, page);
       }},
      {"wrapping address", [&](RawArchive& raw) { raw.addChunk(0xfffffffffffff800, page); }},
      {"trailing skippable frame", [&](RawArchive& raw) { raw.addChunk(0x1000, page, skippable); }},
  };
  auto dir = TempDir::create("archive-verify-strict");
  ASSERT_TRUE(dir.ok());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RawArchive raw;
    raw.addDocument(format::BlockType::Metadata, metadata);
    c.add_chunks(raw);
    const std::string path = dir->file("forged.psnap");
    ASSERT_TRUE(test::writeFileBytes(path, raw.finish()).ok());
    auto strict = ArchiveReader::open(path);
    if (strict.ok()) { // open is lazy about chunk contents: reading the chunk must fail
      Bytes out(4096);
      ASSERT_FALSE((*strict)->chunks().empty());
      EXPECT_FALSE((*strict)->readChunk((*strict)->chunks()[0], out).ok());
    }
    auto salvaged = ArchiveReader::open(path, OpenMode::Salvage);
    ASSERT_TRUE(salvaged.ok()) << salvaged.error().message;
    const VerifyReport report = (*salvaged)->verify();
    EXPECT_FALSE(report.ok());
    ASSERT_FALSE(report.damaged.empty());
    for (const auto& damage : report.damaged)
      EXPECT_EQ(damage.problem.find('\n'), std::string::npos);
  }
}

} // namespace
} // namespace procsnap
