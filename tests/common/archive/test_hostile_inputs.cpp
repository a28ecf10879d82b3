// Hostile inputs for common/: every single-bit flip of an archive is caught by verify(), and
// every fuzz seed and every input a fuzzer once crashed on (fuzz/regressions/, docs/RELIABILITY.md)
// goes through the reader and the /proc parsers with a one-line error or a clean result.
#include "common/archive/format.h"
#include "common/archive/metadata_codec.h"
#include "common/archive/reader.h"
#include "common/proc/maps.h"
#include "common/proc/smaps.h"
#include "common/proc/status.h"
#include "tests/support/archive_synth.h"
#include "tests/support/peak_growth.h"
#include "tests/support/raw_archive.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <unistd.h>

namespace procsnap {
namespace {

using test::TempDir;
using Bytes = std::vector<std::byte>;

const std::string kFuzzDir = std::string(PROCSNAP_SOURCE_DIR) + "/fuzz";
// A cut-down capture of samples/sample_target (fuzz/make_corpus.sh --commit): real metadata of
// 16 regions, a real module sketch, two one-page chunks, stats, index and trailer.
const std::string kRealArchive = kFuzzDir + "/corpus/fuzz_archive_reader/small.psnap";
// Flips sampled from the real archive (too many bits to try them all within the time budget).
constexpr int kSampledFlips = 5000;

// Overwrites path with bytes; the reader maps the file afresh on every open.
void rewrite(const std::string& path, const Bytes& bytes) {
  ASSERT_TRUE(test::writeFileBytes(path, bytes).ok());
}

// Flips one bit of the file at path in place (pwrite of one byte: far cheaper than rewriting
// the file for each of thousands of flips); flipping it again restores the file.
void flipBit(int fd, const Bytes& good, size_t position, int bit) {
  const auto flipped = good[position] ^ static_cast<std::byte>(1 << bit);
  ASSERT_EQ(::pwrite(fd, &flipped, 1, static_cast<off_t>(position)), 1);
}
void restoreByte(int fd, const Bytes& good, size_t position) {
  ASSERT_EQ(::pwrite(fd, &good[position], 1, static_cast<off_t>(position)), 1);
}

void expectOneLine(const std::string& message) {
  EXPECT_FALSE(message.empty());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// Whether a damaged archive is caught: open() refuses it (only a bad file header may make
// Salvage refuse), or verify() of the salvaged reader reports damage.
::testing::AssertionResult flipIsCaught(const std::string& path, size_t position) {
  auto reader = ArchiveReader::open(path, OpenMode::Salvage);
  if (!reader.ok()) {
    if (position < format::kFileHeaderSize)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "salvage refused a file with an intact header: " << reader.error().message;
  }
  const VerifyReport report = (*reader)->verify();
  if (report.ok())
    return ::testing::AssertionFailure() << "verify() passed";
  if (report.intact_prefix > position + 1 && position >= format::kFileHeaderSize &&
      report.damaged.empty())
    return ::testing::AssertionFailure() << "verify() failed but names no damaged block";
  return ::testing::AssertionSuccess();
}

// A tiny complete archive: metadata with one region and no threads, two chunks of 512 bytes,
// one module of two small pieces, stats, index and trailer.
Bytes tinyArchive(const TempDir& dir) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  metadata.regions.resize(1);
  metadata.regions[0].smaps.fields.clear();
  metadata.threads.clear();
  std::vector<test::SyntheticChunk> chunks;
  for (uint64_t address : {0x400000ull, 0x400200ull}) {
    test::SyntheticChunk chunk{address, Bytes(512)};
    for (size_t i = 0; i < chunk.bytes.size(); ++i)
      chunk.bytes[i] = test::syntheticByte(address + i);
    chunks.push_back(std::move(chunk));
  }
  test::SynthOptions options;
  ModuleSketch sketch;
  sketch.record.path = "/synthetic/bin";
  sketch.file_size = 0x1000;
  sketch.pieces.push_back({0, Bytes(16, std::byte{0x7f})});
  sketch.pieces.push_back({0x800, Bytes(16, std::byte{1})});
  options.modules.push_back(sketch);
  const std::string path = dir.file("tiny.psnap");
  EXPECT_TRUE(test::writeSyntheticArchive(path, metadata, chunks, options).ok());
  auto bytes = test::readFileBytes(path);
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? *bytes : Bytes{};
}

TEST(HostileInputs, EverySingleBitFlipOfATinyArchiveIsCaughtExhaustively) {
  auto dir = TempDir::create("hostile-flips");
  ASSERT_TRUE(dir.ok());
  const Bytes good = tinyArchive(*dir);
  ASSERT_FALSE(good.empty());
  ASSERT_LE(good.size(), 4096u) << "the tiny archive grew: the exhaustive test would be slow";
  std::printf("exhaustive: %zu bytes, %zu single-bit flips\n", good.size(), good.size() * 8);
  const std::string path = dir->file("flipped.psnap");
  rewrite(path, good);
  {
    auto reader = ArchiveReader::open(path);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    ASSERT_TRUE((*reader)->verify().ok());
    ASSERT_EQ((*reader)->chunks().size(), 2u);
    ASSERT_EQ((*reader)->modules().size(), 1u);
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  size_t failures = 0;
  for (size_t position = 0; position < good.size(); ++position) {
    for (int bit = 0; bit < 8; ++bit) {
      flipBit(fd, good, position, bit);
      const auto caught = flipIsCaught(path, position);
      restoreByte(fd, good, position);
      if (!caught && ++failures <= 10)
        ADD_FAILURE() << "bit " << bit << " of byte " << position << " of " << good.size() << ": "
                      << caught.message();
    }
  }
  ::close(fd);
  EXPECT_EQ(failures, 0u) << "of " << good.size() * 8 << " flips";
}

TEST(HostileInputs, SampledBitFlipsOfARealCaptureAreCaught) {
  auto real = test::readFileBytes(kRealArchive);
  ASSERT_TRUE(real.ok()) << real.error().message;
  const Bytes& good = *real;
  auto dir = TempDir::create("hostile-real-flips");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("flipped.psnap");
  rewrite(path, good);
  {
    auto reader = ArchiveReader::open(path);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    ASSERT_TRUE((*reader)->verify().ok());
    ASSERT_FALSE((*reader)->metadata().regions.empty());
    ASSERT_FALSE((*reader)->modules().empty());
  }
  std::mt19937_64 random(20261126); // fixed seed: the same flips on every run
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  size_t failures = 0;
  for (int i = 0; i < kSampledFlips; ++i) {
    const size_t position = random() % good.size();
    const int bit = static_cast<int>(random() % 8);
    flipBit(fd, good, position, bit);
    const auto caught = flipIsCaught(path, position);
    restoreByte(fd, good, position);
    if (!caught && ++failures <= 10)
      ADD_FAILURE() << "bit " << bit << " of byte " << position << ": " << caught.message();
  }
  ::close(fd);
  EXPECT_EQ(failures, 0u) << "of " << kSampledFlips << " flips";
}

// The checks the fuzz_archive_reader target makes, on one input.
void replayArchiveInput(const std::string& path, const Bytes& bytes) {
  const bool archive = bytes.size() >= format::kFileMagic.size() &&
                       format::hasMagic(bytes.data(), format::kFileMagic);
  if (!archive) {
    const std::string_view json(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    auto metadata = decodeMetadata(json);
    if (metadata.ok())
      EXPECT_TRUE(decodeMetadata(encodeMetadata(*metadata)).ok());
    else
      expectOneLine(metadata.error().message);
    auto stats = decodeStatsBlock(json);
    if (!stats.ok())
      expectOneLine(stats.error().message);
    auto head = decodeModuleHead(json);
    if (!head.ok())
      expectOneLine(head.error().message);
    return;
  }
  for (OpenMode mode : {OpenMode::Strict, OpenMode::Salvage}) {
    auto reader = ArchiveReader::open(path, mode);
    if (!reader.ok()) {
      expectOneLine(reader.error().message);
      continue;
    }
    const VerifyReport report = (*reader)->verify();
    EXPECT_LE(report.intact_prefix, report.file_size);
    Bytes buffer;
    for (const auto& chunk : (*reader)->chunks()) {
      buffer.resize(chunk.size);
      auto read = (*reader)->readChunk(chunk, buffer);
      if (read.ok())
        continue;
      expectOneLine(read.error().message);
      EXPECT_FALSE(mode == OpenMode::Strict && report.ok())
          << "verify() passed but a chunk cannot be read: " << read.error().message;
    }
    for (size_t i = 0; i < (*reader)->modules().size(); ++i) {
      auto sketch = (*reader)->readModule(i);
      if (!sketch.ok())
        expectOneLine(sketch.error().message);
    }
  }
}

// The checks the fuzz_proc_parsers target makes, on one input.
void replayProcInput(const Bytes& bytes) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  auto maps = parseMaps(text);
  if (!maps.ok())
    expectOneLine(maps.error().message);
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t newline = text.find('\n', begin);
    const size_t end = newline == std::string_view::npos ? text.size() : newline;
    auto entry = parseMapsLine(text.substr(begin, end - begin));
    if (entry.ok()) {
      auto again = parseMapsLine(formatMapsLine(*entry));
      ASSERT_TRUE(again.ok()) << formatMapsLine(*entry);
      EXPECT_EQ(*again, *entry) << formatMapsLine(*entry);
    } else {
      expectOneLine(entry.error().message);
    }
    if (newline == std::string_view::npos)
      break;
    begin = newline + 1;
  }
  auto smaps = parseSmaps(text);
  if (!smaps.ok())
    expectOneLine(smaps.error().message);
  auto status = parseStatus(text);
  if (!status.ok())
    expectOneLine(status.error().message);
  for (int word_size : {8, 4}) {
    auto auxv = parseAuxv(bytes, word_size);
    if (!auxv.ok())
      expectOneLine(auxv.error().message);
  }
}

// A valid zstd frame with a 128 KiB window that declares `declared` bytes of content but holds
// only `content` (one raw block), so a decoder notices the lie only when the content runs out.
Bytes lyingFrame(const Bytes& content, uint64_t declared) {
  Bytes frame = {
      std::byte{0x28}, std::byte{0xb5}, std::byte{0x2f},
      std::byte{0xfd}, std::byte{0xc0}, // 8-byte content size, not single-segment, no checksum
      std::byte{0x38}};                 // window 2^(10+7) bytes
  frame.resize(frame.size() + 8);
  format::storeU64(frame.data() + 6, declared);
  // A raw block that is not the last: the frame just stops, as if cut (a last block would
  // let the decoder compare its total with the declared size at once).
  const uint32_t block_header = static_cast<uint32_t>(content.size() << 3);
  for (int i = 0; i < 3; ++i)
    frame.push_back(static_cast<std::byte>(block_header >> (8 * i)));
  frame.insert(frame.end(), content.begin(), content.end());
  return frame;
}

// Found by review while writing fuzz_archive_reader: readModule() sized each piece's buffer
// from the head before decompressing it, so a MODULE frame that declares 1 GiB (within the
// 4 GiB limit) but holds 16 bytes made the reader zero-fill 1 GiB. Pieces now grow in steps.
TEST(HostileInputs, ModuleFrameDeclaringAGibibyteItDoesNotHoldAllocatesLittle) {
  constexpr uint64_t kPieceLie = 1ull << 30;
  ModuleBlockHead head;
  head.record.path = "/hostile/module";
  head.file_size = kPieceLie;
  head.pieces = {{0, kPieceLie}};
  const std::string json = encodeModuleHead(head);
  Bytes content(4);
  format::storeU32(content.data(), static_cast<uint32_t>(json.size()));
  for (char c : json)
    content.push_back(static_cast<std::byte>(c));
  content.resize(content.size() + 16, std::byte{0x7f}); // the only piece bytes really there
  const uint64_t declared = 4 + json.size() + kPieceLie;
  test::RawArchive raw;
  raw.addDocument(format::BlockType::Metadata, encodeMetadata(test::syntheticMetadata()));
  raw.add(format::BlockType::Module, format::kBlockFlagZstdPayload, lyingFrame(content, declared),
          declared);
  const Bytes archive = raw.finish();
  auto dir = TempDir::create("hostile-module");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("lying-module.psnap");
  rewrite(path, archive);

  auto reader = ArchiveReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.error().message; // the head is consistent with the lie
  ASSERT_EQ((*reader)->modules().size(), 1u);
  auto sketch = (*reader)->readModule(0);
  ASSERT_FALSE(sketch.ok());
  EXPECT_EQ(sketch.error().code, ErrorCode::Corrupt);
  expectOneLine(sketch.error().message);
  EXPECT_NE(sketch.error().message.find("zstd frame"), std::string::npos) << sketch.error().message;
  EXPECT_FALSE((*reader)->verify().ok());
  const long growth = test::peakGrowth([&] {
    (void)(*reader)->readModule(0);
    (void)(*reader)->verify();
  });
  EXPECT_GE(growth, 0);
  EXPECT_LT(growth, 48l << 20) << "peak memory grew by " << growth << " bytes";
}

std::vector<std::filesystem::path> inputsOf(const std::string& target) {
  std::vector<std::filesystem::path> files;
  for (const char* kind : {"corpus", "regressions"}) {
    const std::filesystem::path dir = kFuzzDir + "/" + kind + "/" + target;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error))
      if (entry.is_regular_file())
        files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(HostileInputs, FuzzSeedsAndRegressionsOfTheArchiveReader) {
  const auto files = inputsOf("fuzz_archive_reader");
  ASSERT_GE(files.size(), 3u) << "fuzz/corpus/fuzz_archive_reader is missing";
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    auto bytes = test::readFileBytes(file.string());
    ASSERT_TRUE(bytes.ok());
    replayArchiveInput(file.string(), *bytes);
  }
}

TEST(HostileInputs, FuzzSeedsAndRegressionsOfTheProcParsers) {
  const auto files = inputsOf("fuzz_proc_parsers");
  ASSERT_GE(files.size(), 3u) << "fuzz/corpus/fuzz_proc_parsers is missing";
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    auto bytes = test::readFileBytes(file.string());
    ASSERT_TRUE(bytes.ok());
    replayProcInput(*bytes);
  }
}

} // namespace
} // namespace procsnap
