#include "analyze/engines/region_matcher.h"
#include "analyze/engines/snapshot_diff.h"
#include "analyze/sources/archive_snapshot.h"

#include "tests/support/archive_synth.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

namespace procsnap::analyze {
namespace {

using test::SyntheticChunk;

constexpr uint64_t kHeapStart = 0x1000000;
constexpr uint64_t kHeapEnd = 0x1010000;

// Chunks of 8 KiB, so a region holds several and a change touches one.
constexpr uint32_t kSmallChunk = 0x2000;

RegionRecord anonymousRegion(uint64_t start, uint64_t end, RegionKind kind,
                             std::vector<PageRun> pages, std::string path = "") {
  RegionRecord region;
  region.smaps.map.start = start;
  region.smaps.map.end = end;
  region.smaps.map.perms = {true, true, false, false};
  region.smaps.map.path = std::move(path);
  uint64_t stored = 0;
  for (const PageRun& run : pages)
    if (run.state == PageState::Stored)
      stored += run.end - run.start;
  region.smaps.fields = {{"Size", (end - start) / 1024}, {"Rss", stored / 1024}};
  region.kind = kind;
  region.pages = std::move(pages);
  return region;
}

RegionRecord* findRegion(SnapshotMetadata& metadata, uint64_t start) {
  for (RegionRecord& region : metadata.regions)
    if (region.map().start == start)
      return &region;
  return nullptr;
}

void setByte(std::vector<SyntheticChunk>& chunks, uint64_t address, uint8_t value) {
  for (SyntheticChunk& chunk : chunks) {
    if (address >= chunk.address && address < chunk.address + chunk.bytes.size()) {
      chunk.bytes[address - chunk.address] = static_cast<std::byte>(value);
      return;
    }
  }
  ADD_FAILURE() << "no chunk holds " << address;
}

// A Snapshot that forwards to another but records no digests (the interface's default), as a
// source without chunk hashes would.
class NoDigestSnapshot final : public Snapshot {
public:
  explicit NoDigestSnapshot(const Snapshot& inner) : inner_(inner) {}
  const SnapshotMetadata& metadata() const override { return inner_.metadata(); }
  llvm::StringRef sourceKind() const override { return "test"; }
  llvm::StringRef sourcePath() const override { return inner_.sourcePath(); }
  llvm::Expected<ReadResult> read(uint64_t address,
                                  llvm::MutableArrayRef<uint8_t> out) const override {
    return inner_.read(address, out);
  }
  std::vector<StoredExtent> storedExtents(uint64_t start, uint64_t end) const override {
    return inner_.storedExtents(start, end);
  }
  llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
  moduleImage(size_t module_index) const override {
    return inner_.moduleImage(module_index);
  }

private:
  const Snapshot& inner_;
};

class SnapshotDiffTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = test::TempDir::create("analyze-diff");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_.emplace(std::move(dir.value()));
  }

  // Writes metadata with chunks (syntheticChunks of it unless given) and opens it.
  std::unique_ptr<ArchiveSnapshot> write(const std::string& name, const SnapshotMetadata& metadata,
                                         std::optional<std::vector<SyntheticChunk>> chunks = {},
                                         uint32_t chunk_size = kSmallChunk) {
    std::string path = dir_->file(name);
    auto written = test::writeSyntheticArchive(
        path, metadata, chunks ? *chunks : test::syntheticChunks(metadata, chunk_size));
    EXPECT_TRUE(written.ok()) << written.error().message;
    auto snapshot = ArchiveSnapshot::open(path, {});
    if (!snapshot) {
      ADD_FAILURE() << llvm::toString(snapshot.takeError());
      return nullptr;
    }
    return std::move(*snapshot);
  }

  SnapshotDiff diff(const Snapshot& base, const Snapshot& next, DiffOptions options = {}) {
    auto result = diffSnapshots(base, nullptr, next, nullptr, options);
    if (!result) {
      ADD_FAILURE() << llvm::toString(result.takeError());
      return {};
    }
    return std::move(*result);
  }

  static const RegionDiff* regionAt(const SnapshotDiff& diff, uint64_t start) {
    for (const RegionDiff& region : diff.regions)
      if ((region.next && region.next->start == start) ||
          (!region.next && region.base->start == start))
        return &region;
    return nullptr;
  }

  std::optional<test::TempDir> dir_;
};

TEST_F(SnapshotDiffTest, SnapshotWithItselfHasNoChangeAndDecompressesNothing) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  auto snapshot = write("a.psnap", metadata);
  ASSERT_TRUE(snapshot);
  SnapshotDiff result = diff(*snapshot, *snapshot);
  EXPECT_FALSE(result.differs());
  EXPECT_TRUE(result.warnings.empty());
  ContentDiff sum = result.contentTotals();
  EXPECT_EQ(sum.bytes_changed, 0u);
  EXPECT_EQ(sum.pages_changed, 0u);
  EXPECT_EQ(sum.bytes_read, 0u);
  EXPECT_EQ(sum.chunks_different_by_digest, 0u);
  EXPECT_EQ(sum.chunks_equal_by_digest, snapshot->reader().chunks().size());
  EXPECT_EQ(snapshot->chunksDecompressed(), 0u);
  // [vvar] is unreadable on both sides: nothing to compare, and no difference.
  EXPECT_EQ(sum.bytes_not_compared, 0u);
  for (const RegionDiff& region : result.regions) {
    EXPECT_TRUE(region.pair.matched());
    EXPECT_TRUE(region.changes().empty());
  }
}

TEST_F(SnapshotDiffTest, ChangedBytesAreCountedAndOnlyTheirChunksDecompressed) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  auto base = write("base.psnap", metadata);
  std::vector<SyntheticChunk> chunks = test::syntheticChunks(metadata, kSmallChunk);
  // Three bytes in one heap page, one byte in a data page.
  for (uint64_t address : {kHeapStart + 0x3010, kHeapStart + 0x3011, kHeapStart + 0x3ff0})
    setByte(chunks, address, static_cast<uint8_t>(test::syntheticByte(address)) ^ 0xff);
  setByte(chunks, 0x601008, static_cast<uint8_t>(test::syntheticByte(0x601008)) ^ 1);
  auto next = write("new.psnap", metadata, chunks);
  ASSERT_TRUE(base && next);

  SnapshotDiff result = diff(*base, *next);
  EXPECT_TRUE(result.differs());
  const RegionDiff* heap = regionAt(result, kHeapStart);
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->changes(), std::vector<std::string>{"contents"});
  EXPECT_EQ(heap->content.bytes_changed, 3u);
  EXPECT_EQ(heap->content.pages_changed, 1u);
  ASSERT_EQ(heap->content.changed_ranges.size(), 1u);
  EXPECT_EQ(heap->content.changed_ranges[0],
            (AddressRange{kHeapStart + 0x2000 + 0x1000, kHeapStart + 0x4000}));
  EXPECT_EQ(heap->content.chunks_different_by_digest, 1u);
  EXPECT_EQ(heap->content.chunks_equal_by_digest, 3u); // 0x8000 stored bytes in 8 KiB chunks
  const RegionDiff* data = regionAt(result, 0x601000);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->content.bytes_changed, 1u);
  EXPECT_EQ(result.contentTotals().pages_changed, 2u);
  // Exactly the two differing chunks were decompressed, on each side.
  EXPECT_EQ(base->chunksDecompressed(), 2u);
  EXPECT_EQ(next->chunksDecompressed(), 2u);
  for (const RegionDiff& region : result.regions) {
    if (region.base->start != kHeapStart && region.base->start != 0x601000) {
      EXPECT_FALSE(region.changed()) << region.base->start;
    }
  }
}

TEST_F(SnapshotDiffTest, ChunksThatDoNotLineUpAreComparedByBytes) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  auto base = write("base.psnap", metadata, std::nullopt, kSmallChunk);
  std::vector<SyntheticChunk> chunks = test::syntheticChunks(metadata, 0x3000);
  setByte(chunks, kHeapStart + 0x5001,
          static_cast<uint8_t>(test::syntheticByte(kHeapStart + 0x5001)) ^ 0x40);
  auto next = write("new.psnap", metadata, chunks);
  ASSERT_TRUE(base && next);
  SnapshotDiff result = diff(*base, *next);
  const RegionDiff* heap = regionAt(result, kHeapStart);
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->content.bytes_changed, 1u);
  ASSERT_EQ(heap->content.changed_ranges.size(), 1u);
  EXPECT_EQ(heap->content.changed_ranges[0].start, kHeapStart + 0x5000);
  EXPECT_GT(heap->content.bytes_read, 0u);
  // Chunks at 0 and 0x6000 line up in both (multiples of 8 and 12 KiB): decided by digest.
  EXPECT_GE(heap->content.chunks_equal_by_digest, 1u);
  // Without digests at all (a source that records none), the same answer by bytes.
  NoDigestSnapshot plain_base(*base), plain_next(*next);
  SnapshotDiff plain = diff(plain_base, plain_next);
  const RegionDiff* plain_heap = regionAt(plain, kHeapStart);
  ASSERT_NE(plain_heap, nullptr);
  EXPECT_EQ(plain_heap->content.bytes_changed, 1u);
  EXPECT_EQ(plain_heap->content.chunks_equal_by_digest, 0u);
  EXPECT_EQ(plain.contentTotals().bytes_changed, 1u);
}

TEST_F(SnapshotDiffTest, StoredAgainstZeroCountsTheNonZeroBytes) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  SnapshotMetadata changed = metadata;
  RegionRecord* stack = findRegion(changed, 0x7ffd0000);
  ASSERT_NE(stack, nullptr);
  // The last stack page is all zero in NEW.
  stack->pages = {{0x7ffd0000, 0x7ffec000, PageState::NotPresent},
                  {0x7ffec000, 0x7ffef000, PageState::Stored},
                  {0x7ffef000, 0x7fff0000, PageState::Zero}};
  auto base = write("base.psnap", metadata);
  auto next = write("new.psnap", changed);
  ASSERT_TRUE(base && next);
  SnapshotDiff result = diff(*base, *next);
  const RegionDiff* region = regionAt(result, 0x7ffd0000);
  ASSERT_NE(region, nullptr);
  uint64_t non_zero = 0;
  for (uint64_t address = 0x7ffef000; address < 0x7fff0000; ++address)
    non_zero += test::syntheticByte(address) != std::byte{0};
  EXPECT_EQ(region->content.bytes_changed, non_zero);
  EXPECT_EQ(region->content.pages_changed, 1u);
}

TEST_F(SnapshotDiffTest, RegionsAddedRemovedGrownAndReprotected) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  SnapshotMetadata changed = metadata;
  // The heap grows by 0x8000 stored bytes; [stack] becomes read-only; the text region goes;
  // a new anonymous region appears.
  RegionRecord* heap = findRegion(changed, kHeapStart);
  ASSERT_NE(heap, nullptr);
  *heap = anonymousRegion(kHeapStart, kHeapEnd + 0x8000, RegionKind::Heap,
                          {{kHeapStart, kHeapStart + 0x8000, PageState::Stored},
                           {kHeapStart + 0x8000, kHeapEnd, PageState::NotPresent},
                           {kHeapEnd, kHeapEnd + 0x8000, PageState::Stored}},
                          "[heap]");
  findRegion(changed, 0x7ffd0000)->smaps.map.perms.write = false;
  changed.regions.erase(changed.regions.begin()); // 0x400000 text
  changed.regions.push_back(anonymousRegion(0x7f0000000000, 0x7f0000010000, RegionKind::PrivateAnon,
                                            {{0x7f0000000000, 0x7f0000010000, PageState::Stored}}));
  std::sort(
      changed.regions.begin(), changed.regions.end(),
      [](const RegionRecord& a, const RegionRecord& b) { return a.map().start < b.map().start; });
  auto base = write("base.psnap", metadata);
  auto next = write("new.psnap", changed);
  ASSERT_TRUE(base && next);
  SnapshotDiff result = diff(*base, *next);
  EXPECT_TRUE(result.differs());

  const RegionDiff* grown = regionAt(result, kHeapStart);
  ASSERT_NE(grown, nullptr);
  EXPECT_EQ(grown->changes(), std::vector<std::string>{"grown"});
  EXPECT_EQ(grown->sizeDelta(), 0x8000);
  EXPECT_EQ(grown->content.bytes_changed, 0u); // the common part is the same
  const RegionDiff* stack = regionAt(result, 0x7ffd0000);
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->changes(), std::vector<std::string>{"permissions"});
  const RegionDiff* removed = regionAt(result, 0x400000);
  ASSERT_NE(removed, nullptr);
  EXPECT_TRUE(removed->removed());
  const RegionDiff* added = regionAt(result, 0x7f0000000000);
  ASSERT_NE(added, nullptr);
  EXPECT_TRUE(added->added());
  EXPECT_EQ(added->sizeDelta(), 0x10000);

  const KindTotal& heap_before = result.base_totals[static_cast<size_t>(RegionKind::Heap)];
  const KindTotal& heap_after = result.new_totals[static_cast<size_t>(RegionKind::Heap)];
  EXPECT_EQ(heap_after.mapped_bytes - heap_before.mapped_bytes, 0x8000u);
  EXPECT_EQ(heap_after.stored_bytes - heap_before.stored_bytes, 0x8000u);
  ASSERT_TRUE(heap_before.rss_bytes && heap_after.rss_bytes);
  EXPECT_EQ(*heap_after.rss_bytes - *heap_before.rss_bytes, 0x8000u);
  EXPECT_EQ(result.new_totals[static_cast<size_t>(RegionKind::Text)].regions, 0u);
  EXPECT_EQ(result.new_totals[static_cast<size_t>(RegionKind::PrivateAnon)].mapped_bytes, 0x10000u);
}

TEST_F(SnapshotDiffTest, OneSideExcludedIsNotComparedNorADifference) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  SnapshotMetadata changed = metadata;
  RegionRecord* heap = findRegion(changed, kHeapStart);
  heap->pages = {{kHeapStart, kHeapStart + 0x8000, PageState::ExcludedDontDump},
                 {kHeapStart + 0x8000, kHeapEnd, PageState::NotPresent}};
  auto base = write("base.psnap", metadata);
  auto next = write("new.psnap", changed);
  ASSERT_TRUE(base && next);
  SnapshotDiff result = diff(*base, *next);
  const RegionDiff* region = regionAt(result, kHeapStart);
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->content.bytes_not_compared, 0x8000u);
  EXPECT_EQ(region->content.bytes_changed, 0u);
  EXPECT_FALSE(result.differs());
}

TEST_F(SnapshotDiffTest, AnotherProcessIsMatchedByIdentityWithAWarning) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  SnapshotMetadata other = metadata;
  other.process.pid = 4343;
  // The heap lies elsewhere (ASLR): matched as "[heap]", compared offset by offset.
  RegionRecord* heap = findRegion(other, kHeapStart);
  const uint64_t shift = 0x100000;
  heap->smaps.map.start += shift;
  heap->smaps.map.end += shift;
  for (PageRun& run : heap->pages) {
    run.start += shift;
    run.end += shift;
  }
  auto base = write("base.psnap", metadata);
  // Chunks of NEW hold BASE's heap bytes at the shifted addresses: the contents are equal.
  std::vector<SyntheticChunk> chunks = test::syntheticChunks(other, kSmallChunk);
  for (SyntheticChunk& chunk : chunks)
    if (chunk.address >= kHeapStart + shift && chunk.address < kHeapEnd + shift)
      for (size_t i = 0; i < chunk.bytes.size(); ++i)
        chunk.bytes[i] = test::syntheticByte(chunk.address - shift + i);
  auto next = write("new.psnap", other, chunks);
  ASSERT_TRUE(base && next);
  SnapshotDiff result = diff(*base, *next);
  ASSERT_EQ(result.warnings.size(), 1u);
  EXPECT_NE(result.warnings[0].find("different processes (pid 4242 and 4343)"), std::string::npos);
  const RegionDiff* moved = regionAt(result, kHeapStart + shift);
  ASSERT_NE(moved, nullptr);
  EXPECT_TRUE(moved->pair.matched());
  EXPECT_FALSE(moved->pair.by_address);
  EXPECT_EQ(moved->pair.delta, static_cast<int64_t>(shift));
  EXPECT_EQ(moved->changes(), std::vector<std::string>{"moved"});
  EXPECT_EQ(moved->content.bytes_changed, 0u);
  EXPECT_EQ(moved->content.chunks_equal_by_digest, 4u);
}

TEST_F(SnapshotDiffTest, NewStringsAreThoseOfChangedBytesNotInBase) {
  SnapshotMetadata metadata = test::syntheticMetadata();
  std::vector<SyntheticChunk> base_chunks = test::syntheticChunks(metadata, kSmallChunk);
  std::vector<SyntheticChunk> new_chunks = base_chunks;
  auto put = [](std::vector<SyntheticChunk>& chunks, uint64_t address, const char* text) {
    for (size_t i = 0; i <= std::strlen(text); ++i)
      setByte(chunks, address + i, static_cast<uint8_t>(text[i]));
    setByte(chunks, address - 1, 0);
  };
  put(base_chunks, kHeapStart + 0x100, "old-string-in-both");
  put(new_chunks, kHeapStart + 0x100, "old-string-in-both");
  put(base_chunks, kHeapStart + 0x2100, "moved-string-text");
  put(new_chunks, kHeapStart + 0x4100, "moved-string-text");
  put(new_chunks, kHeapStart + 0x6100, "brand-new-string-text");
  auto base = write("base.psnap", metadata, base_chunks);
  auto next = write("new.psnap", metadata, new_chunks);
  ASSERT_TRUE(base && next);
  DiffOptions options;
  options.strings = true;
  options.min_string_length = 12; // longer than any accidental run in the synthetic bytes
  SnapshotDiff result = diff(*base, *next, options);
  ASSERT_TRUE(result.strings_searched);
  ASSERT_EQ(result.new_strings.size(), 1u);
  EXPECT_EQ(result.new_strings[0].text, "brand-new-string-text");
  EXPECT_EQ(result.new_strings[0].address, kHeapStart + 0x6100);
  EXPECT_EQ(result.new_strings[0].kind, RegionKind::Heap);
  options.max_strings = 0;
  SnapshotDiff capped = diff(*base, *next, options);
  EXPECT_TRUE(capped.new_strings.empty());
  EXPECT_EQ(capped.new_strings_omitted, 1u);
}

TEST(RegionMatcherTest, PairsByAddressThenIdentity) {
  std::vector<RegionRecord> base = {
      anonymousRegion(0x10000, 0x20000, RegionKind::PrivateAnon, {}),
      anonymousRegion(0x30000, 0x40000, RegionKind::Heap, {}, "[heap]"),
      anonymousRegion(0x50000, 0x60000, RegionKind::PrivateAnon, {}),
  };
  std::vector<RegionRecord> next = {
      // The first mapping grew downwards (a new mmap merged with it).
      anonymousRegion(0x8000, 0x20000, RegionKind::PrivateAnon, {}),
      // [heap] moved: matched by identity.
      anonymousRegion(0x90000, 0xa0000, RegionKind::Heap, {}, "[heap]"),
      // An anonymous region of another size elsewhere: not the same.
      anonymousRegion(0xb0000, 0xb8000, RegionKind::PrivateAnon, {}),
  };
  std::vector<RegionPair> pairs = matchRegions(base, next);
  ASSERT_EQ(pairs.size(), 4u);
  EXPECT_EQ(pairs[0].base_index, 0);
  EXPECT_EQ(pairs[0].new_index, 0);
  EXPECT_TRUE(pairs[0].by_address);
  EXPECT_EQ(pairs[1].base_index, 2); // removed, at its base address 0x50000
  EXPECT_EQ(pairs[1].new_index, -1);
  EXPECT_EQ(pairs[2].base_index, 1);
  EXPECT_EQ(pairs[2].new_index, 1);
  EXPECT_FALSE(pairs[2].by_address);
  EXPECT_EQ(pairs[2].delta, 0x60000);
  EXPECT_EQ(pairs[3].base_index, -1);
  EXPECT_EQ(pairs[3].new_index, 2);
  EXPECT_EQ(regionIdentity(base, 1), "[heap]");
  EXPECT_EQ(regionIdentity(base, 0), "anon:anon");
}

// A region without smaps (every region of a core) makes its kind's RSS unknown, never 0.
TEST(KindTotalsTest, UnknownRssIsNotCountedAsZero) {
  SnapshotMetadata metadata;
  metadata.regions = {anonymousRegion(0x10000, 0x20000, RegionKind::Heap, {}, "[heap]"),
                      anonymousRegion(0x30000, 0x40000, RegionKind::MainStack, {}, "[stack]")};
  metadata.regions[1].smaps.fields.clear();
  KindTotals totals = totalsByKind(metadata);
  EXPECT_TRUE(totals[static_cast<size_t>(RegionKind::Heap)].rss_bytes.has_value());
  EXPECT_FALSE(totals[static_cast<size_t>(RegionKind::MainStack)].rss_bytes.has_value());
  EXPECT_EQ(totals[static_cast<size_t>(RegionKind::MainStack)].mapped_bytes, 0x10000u);
}

// A core's NT_FILE note gives path, range and file offset but no device or inode: the same
// mapping in an archive (with them) and in a core (without) is still the same mapping.
TEST(RegionMatcherTest, FileMappingsPairWithoutDeviceAndInode) {
  auto fileRegion = [](uint64_t start, uint64_t end, uint64_t offset, uint64_t inode) {
    RegionRecord region = anonymousRegion(start, end, RegionKind::Data, {}, "/usr/lib/libc.so.6");
    region.smaps.map.offset = offset;
    region.smaps.map.inode = inode;
    region.smaps.map.dev_major = inode ? 0xfe : 0;
    return region;
  };
  std::vector<RegionRecord> archive = {fileRegion(0x10000, 0x12000, 0x1d3000, 5317222)};
  std::vector<RegionRecord> core = {fileRegion(0x10000, 0x12000, 0x1d3000, 0)};
  std::vector<RegionPair> pairs = matchRegions(archive, core);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_TRUE(pairs[0].matched());
  EXPECT_TRUE(pairs[0].by_address);
  EXPECT_EQ(regionIdentity(archive, 0), regionIdentity(core, 0));
  // A different file offset at the same address is another mapping.
  std::vector<RegionRecord> other = {fileRegion(0x10000, 0x12000, 0x1d4000, 0)};
  EXPECT_FALSE(matchRegions(archive, other)[0].matched());
}

} // namespace
} // namespace procsnap::analyze
