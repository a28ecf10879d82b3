#include "capture/capture_policy.h"

#include <gtest/gtest.h>

namespace procsnap {
namespace {

RegionRecord makeRegion(RegionKind kind, const std::string& perms, const std::string& path,
                        uint64_t inode = 0, std::vector<std::string> flags = {}) {
  RegionRecord region;
  region.kind = kind;
  MapsEntry& map = region.smaps.map;
  map.start = 0x1000;
  map.end = 0x5000;
  map.perms = {perms[0] == 'r', perms[1] == 'w', perms[2] == 'x', perms[3] == 's'};
  map.path = path;
  map.inode = inode;
  region.smaps.vm_flags = std::move(flags);
  return region;
}

const RegionRecord kHeap = makeRegion(RegionKind::Heap, "rw-p", "[heap]");
const RegionRecord kAnon = makeRegion(RegionKind::PrivateAnon, "rw-p", "");
const RegionRecord kText = makeRegion(RegionKind::Text, "r-xp", "/usr/lib/libc.so.6", 42);
const RegionRecord kData = makeRegion(RegionKind::Data, "rw-p", "/usr/lib/libc.so.6", 42);
const RegionRecord kSharedFile = makeRegion(RegionKind::FileBacked, "rw-s", "/var/db/file", 7);
const RegionRecord kSharedAnon = makeRegion(RegionKind::SharedAnon, "rw-s", "/dev/zero", 9);
const RegionRecord kVvar = makeRegion(RegionKind::Vvar, "r--p", "[vvar]");
const RegionRecord kVvarClock = makeRegion(RegionKind::Vvar, "r--p", "[vvar_vclock]");
const RegionRecord kVsyscall = makeRegion(RegionKind::Vsyscall, "--xp", "[vsyscall]");
const RegionRecord kDontDump = makeRegion(RegionKind::PrivateAnon, "rw-p", "", 0, {"rd", "dd"});

TEST(CapturePolicyTest, DefaultStoresPrivateMemoryAndModules) {
  const CapturePolicy policy;
  EXPECT_EQ(policy.coredump_filter, 0x33u);
  for (const RegionRecord* region : {&kHeap, &kAnon, &kText, &kData, &kSharedAnon})
    EXPECT_EQ(regionExclusion(*region, policy), std::nullopt) << region->map().path;
}

TEST(CapturePolicyTest, DefaultExcludesSharedFilesDontDumpAndUnreadable) {
  const CapturePolicy policy;
  EXPECT_EQ(regionExclusion(kSharedFile, policy), PageState::ExcludedFilter);
  EXPECT_EQ(regionExclusion(kDontDump, policy), PageState::ExcludedDontDump);
  EXPECT_EQ(regionExclusion(kVvar, policy), PageState::Unreadable);
  EXPECT_EQ(regionExclusion(kVvarClock, policy), PageState::Unreadable);
  EXPECT_EQ(regionExclusion(kVsyscall, policy), PageState::Unreadable);
}

TEST(CapturePolicyTest, CoredumpFilterBits) {
  CapturePolicy policy;
  policy.coredump_filter = 0x08; // shared file-backed only
  EXPECT_EQ(regionExclusion(kSharedFile, policy), std::nullopt);
  EXPECT_EQ(regionExclusion(kAnon, policy), PageState::ExcludedFilter);
  EXPECT_EQ(regionExclusion(kHeap, policy), PageState::ExcludedFilter);
  EXPECT_EQ(regionExclusion(kSharedAnon, policy), PageState::ExcludedFilter);
  // Private file-backed mappings are always stored (bit 2 clear here).
  EXPECT_EQ(regionExclusion(kText, policy), std::nullopt);
  EXPECT_EQ(regionExclusion(kData, policy), std::nullopt);
  // memfd and deleted shared files count as shared anonymous memory, as in the kernel.
  RegionRecord memfd = makeRegion(RegionKind::SharedAnon, "rw-s", "/memfd:x", 5);
  memfd.smaps.map.deleted = true;
  EXPECT_EQ(regionExclusion(memfd, policy), PageState::ExcludedFilter);
  policy.coredump_filter = 0x02;
  EXPECT_EQ(regionExclusion(memfd, policy), std::nullopt);
  EXPECT_EQ(regionExclusion(kSharedFile, policy), PageState::ExcludedFilter);
}

TEST(CapturePolicyTest, HugetlbFollowsItsOwnBits) {
  const RegionRecord huge_private =
      makeRegion(RegionKind::PrivateAnon, "rw-p", "/anon_hugepage (deleted)", 3, {"ht"});
  const RegionRecord huge_shared =
      makeRegion(RegionKind::SharedAnon, "rw-s", "/anon_hugepage (deleted)", 3, {"ht"});
  CapturePolicy policy; // 0x33: bit 5 set, bit 6 clear
  EXPECT_EQ(regionExclusion(huge_private, policy), std::nullopt);
  EXPECT_EQ(regionExclusion(huge_shared, policy), PageState::ExcludedFilter);
  policy.coredump_filter = 0x40;
  EXPECT_EQ(regionExclusion(huge_private, policy), PageState::ExcludedFilter);
  EXPECT_EQ(regionExclusion(huge_shared, policy), std::nullopt);
}

TEST(CapturePolicyTest, AllIgnoresDontDumpAndFilterButNotUnreadable) {
  CapturePolicy policy;
  policy.all = true;
  policy.coredump_filter = 0;
  for (const RegionRecord* region : {&kHeap, &kAnon, &kSharedFile, &kDontDump, &kText})
    EXPECT_EQ(regionExclusion(*region, policy), std::nullopt) << region->map().path;
  EXPECT_EQ(regionExclusion(kVvar, policy), PageState::Unreadable);
  EXPECT_EQ(regionExclusion(kVsyscall, policy), PageState::Unreadable);
}

TEST(CapturePolicyTest, OnlyKindsAndExcludeKinds) {
  CapturePolicy policy;
  policy.only_kinds = std::set<RegionKind>{RegionKind::Heap, RegionKind::Data};
  EXPECT_EQ(regionExclusion(kHeap, policy), std::nullopt);
  EXPECT_EQ(regionExclusion(kData, policy), std::nullopt);
  EXPECT_EQ(regionExclusion(kText, policy), PageState::ExcludedFilter);
  EXPECT_EQ(regionExclusion(kAnon, policy), PageState::ExcludedFilter);
  // Filtering out wins over dd: the filter is the reason recorded.
  policy.only_kinds.reset();
  policy.exclude_kinds = {RegionKind::PrivateAnon};
  EXPECT_EQ(regionExclusion(kAnon, policy), PageState::ExcludedFilter);
  EXPECT_EQ(regionExclusion(kDontDump, policy), PageState::ExcludedFilter);
  EXPECT_EQ(regionExclusion(kHeap, policy), std::nullopt);
}

TEST(CapturePolicyTest, ExcludePathsBySubstringAndGlob) {
  CapturePolicy policy;
  policy.exclude_paths = {"libc.so"};
  EXPECT_EQ(regionExclusion(kText, policy), PageState::ExcludedFilter);
  EXPECT_EQ(regionExclusion(kHeap, policy), std::nullopt);
  policy.exclude_paths = {"/usr/lib/*.so.[0-9]"};
  EXPECT_EQ(regionExclusion(kData, policy), PageState::ExcludedFilter);
  policy.exclude_paths = {"/usr/*.so"}; // a glob matches the whole path
  EXPECT_EQ(regionExclusion(kData, policy), std::nullopt);
  policy.exclude_paths = {""}; // an empty pattern matches nothing
  EXPECT_EQ(regionExclusion(kData, policy), std::nullopt);
  // Anonymous regions have no path to match.
  policy.exclude_paths = {"*"};
  EXPECT_EQ(regionExclusion(kAnon, policy), std::nullopt);
  EXPECT_EQ(regionExclusion(kHeap, policy), PageState::ExcludedFilter); // "[heap]" matches
}

TEST(CapturePolicyTest, MarkWholeRegion) {
  RegionRecord region = kHeap;
  region.pages = {{0x1000, 0x2000, PageState::Stored}};
  markWholeRegion(region, PageState::ExcludedFilter);
  ASSERT_EQ(region.pages.size(), 1u);
  EXPECT_EQ(region.pages[0].start, 0x1000u);
  EXPECT_EQ(region.pages[0].end, 0x5000u);
  EXPECT_EQ(region.pages[0].state, PageState::ExcludedFilter);
}

} // namespace
} // namespace procsnap
