// capture --cow reads smaps before the freeze and learns the VmFlags as they were at the fork
// only after the thaw, from the fork's own smaps. These cases are the races in between: each
// one must end with the decision the flags at the fork call for.
#include "capture/cow_child.h"

#include <gtest/gtest.h>

namespace procsnap {
namespace {

constexpr uint64_t kRegionSize = 0x10000;

// Private anonymous read-write regions, one after the other, with these VmFlags.
RegionRecord anonRegion(size_t index, std::vector<std::string> flags) {
  RegionRecord region;
  region.kind = RegionKind::PrivateAnon;
  MapsEntry& map = region.smaps.map;
  map.start = 0x100000 + index * kRegionSize;
  map.end = map.start + kRegionSize;
  map.perms = {true, true, false, false};
  region.smaps.vm_flags = std::move(flags);
  region.smaps.fields = {{"Rss", 4}};
  return region;
}

SmapsEntry forkEntry(const RegionRecord& region, std::vector<std::string> flags) {
  SmapsEntry entry;
  entry.map = region.map();
  entry.vm_flags = std::move(flags);
  entry.fields = {{"Rss", 64}};
  return entry;
}

struct Discarded {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::function<void(uint64_t, uint64_t)> callback() {
    return [this](uint64_t start, uint64_t end) { ranges.emplace_back(start, end); };
  }
};

TEST(CowReconcileTest, DontDumpSetAtTheForkLeavesAForkCopiedRegionOut) {
  std::vector<RegionRecord> regions = {anonRegion(0, {"rd", "wr"})};
  std::vector<char> copy = {kCopyFromFork};
  Discarded discarded;
  reconcileWithFork(regions, {1}, {1}, {forkEntry(regions[0], {"rd", "wr", "dd"})}, {}, copy,
                    discarded.callback());
  EXPECT_EQ(copy[0], kSkip);
  ASSERT_EQ(regions[0].pages.size(), 1u);
  EXPECT_EQ(regions[0].pages[0].state, PageState::ExcludedDontDump);
  EXPECT_TRUE(regions[0].smaps.dontDump());
  EXPECT_TRUE(discarded.ranges.empty()); // nothing was copied yet
  // The statistics stay those read before the freeze.
  EXPECT_EQ(regions[0].smaps.field("Rss"), 4u);
}

TEST(CowReconcileTest, DontDumpFoundForARegionCopiedFrozenDropsItsChunks) {
  // Its smaps were unknown at the freeze (the mapping changed), so it was copied frozen.
  std::vector<RegionRecord> regions = {anonRegion(0, {})};
  regions[0].smaps.fields.clear();
  regions[0].pages = {PageRun{regions[0].map().start, regions[0].map().end, PageState::Stored}};
  std::vector<char> copy = {kCopyFrozen};
  Discarded discarded;
  reconcileWithFork(regions, {0}, {1}, {forkEntry(regions[0], {"rd", "wr", "dd"})}, {}, copy,
                    discarded.callback());
  EXPECT_EQ(copy[0], kSkip);
  ASSERT_EQ(discarded.ranges.size(), 1u);
  EXPECT_EQ(discarded.ranges[0].first, regions[0].map().start);
  EXPECT_EQ(discarded.ranges[0].second, regions[0].map().end);
  ASSERT_EQ(regions[0].pages.size(), 1u);
  EXPECT_EQ(regions[0].pages[0].state, PageState::ExcludedDontDump);
  // Unknown smaps are taken from the fork.
  EXPECT_EQ(regions[0].smaps.field("Rss"), 64u);
}

TEST(CowReconcileTest, DontDumpClearedBeforeTheForkIsCopiedAfterAll) {
  std::vector<RegionRecord> regions = {anonRegion(0, {"rd", "wr", "dd"})};
  regions[0].pages = {
      PageRun{regions[0].map().start, regions[0].map().end, PageState::ExcludedDontDump}};
  std::vector<char> copy = {kSkip};
  Discarded discarded;
  reconcileWithFork(regions, {1}, {1}, {forkEntry(regions[0], {"rd", "wr"})}, {}, copy,
                    discarded.callback());
  EXPECT_EQ(copy[0], kCopyFromFork);
  EXPECT_TRUE(regions[0].pages.empty());
  EXPECT_FALSE(regions[0].smaps.dontDump());
}

TEST(CowReconcileTest, WipeOnForkSetAtTheForkIsUnreadableNotZeros) {
  std::vector<RegionRecord> regions = {anonRegion(0, {"rd", "wr"})};
  std::vector<char> copy = {kCopyFromFork};
  Discarded discarded;
  reconcileWithFork(regions, {1}, {1}, {forkEntry(regions[0], {"rd", "wr", "wf"})}, {}, copy,
                    discarded.callback());
  EXPECT_EQ(copy[0], kSkip);
  ASSERT_EQ(regions[0].pages.size(), 1u);
  EXPECT_EQ(regions[0].pages[0].state, PageState::Unreadable);
  EXPECT_NE(regions[0].note.find("MADV_WIPEONFORK"), std::string::npos);
}

TEST(CowReconcileTest, WithAllDontDumpChangesNothing) {
  std::vector<RegionRecord> regions = {anonRegion(0, {"rd", "wr"})};
  std::vector<char> copy = {kCopyFromFork};
  Discarded discarded;
  CapturePolicy all;
  all.all = true;
  reconcileWithFork(regions, {1}, {1}, {forkEntry(regions[0], {"rd", "wr", "dd"})}, all, copy,
                    discarded.callback());
  EXPECT_EQ(copy[0], kCopyFromFork);
  EXPECT_TRUE(regions[0].pages.empty());
}

TEST(CowReconcileTest, RegionsMissingFromTheForkKeepTheirDecision) {
  // Region 1 is MADV_DONTFORK: absent from the fork's maps and smaps, copied frozen.
  std::vector<RegionRecord> regions = {anonRegion(0, {"rd", "wr"}), anonRegion(1, {"rd", "wr"}),
                                       anonRegion(2, {"rd", "wr"})};
  const std::vector<MapsEntry> fork_maps = {regions[0].map(), regions[2].map()};
  const std::vector<char> in_fork = presentIn(regions, fork_maps);
  EXPECT_EQ(in_fork, (std::vector<char>{1, 0, 1}));
  // A mapping that changed (here: its protection) is not the same mapping.
  std::vector<MapsEntry> changed = fork_maps;
  changed[1].perms.write = false;
  EXPECT_EQ(presentIn(regions, changed), (std::vector<char>{1, 0, 0}));

  std::vector<char> copy = {kCopyFromFork, kCopyFrozen, kCopyFromFork};
  Discarded discarded;
  reconcileWithFork(regions, {1, 1, 1}, in_fork,
                    {forkEntry(regions[0], {"rd", "wr"}), forkEntry(regions[2], {"rd", "wr"})}, {},
                    copy, discarded.callback());
  EXPECT_EQ(copy, (std::vector<char>{kCopyFromFork, kCopyFrozen, kCopyFromFork}));
  EXPECT_TRUE(discarded.ranges.empty());
}

} // namespace
} // namespace procsnap
