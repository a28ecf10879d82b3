// The page-run and chunk arithmetic of capture --precopy's frozen re-copy.
#include "capture/precopy_refresh.h"

#include <gtest/gtest.h>

namespace procsnap {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMiB = 1u << 20;

bool operator==(const AddressRange& a, const AddressRange& b) {
  return a.start == b.start && a.end == b.end;
}

TEST(PrecopyRefreshTest, WrittenPagesWidenToTheWholeChunksTheyTouch) {
  const std::vector<AddressRange> chunks = {
      {0x100000, 0x100000 + kMiB}, {0x200000, 0x200000 + kMiB}, {0x400000, 0x400000 + kMiB}};
  // One page inside the first chunk, one straddling the second's end into a hole, one in the
  // hole between the second and the third, and one page of each of two neighbours.
  const std::vector<AddressRange> written = {{0x180000, 0x180000 + kPage},
                                             {0x2ff000, 0x301000},
                                             {0x350000, 0x351000},
                                             {0x4ff000, 0x501000}};
  const std::vector<AddressRange> spans = widenToChunks(written, chunks);
  // The first two spans touch (0x200000): they merge, one copy instead of two.
  const std::vector<AddressRange> expected = {
      {0x100000, 0x301000}, {0x350000, 0x351000}, {0x400000, 0x501000}};
  ASSERT_EQ(spans.size(), expected.size());
  for (size_t i = 0; i < spans.size(); ++i)
    EXPECT_TRUE(spans[i] == expected[i])
        << i << ": " << std::hex << spans[i].start << "-" << spans[i].end;
}

TEST(PrecopyRefreshTest, OverlappingWidenedSpansMerge) {
  const std::vector<AddressRange> chunks = {{0x100000, 0x200000}};
  const std::vector<AddressRange> written = {{0x110000, 0x111000}, {0x1f0000, 0x1f1000}};
  const std::vector<AddressRange> spans = widenToChunks(written, chunks);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_TRUE(spans[0] == (AddressRange{0x100000, 0x200000}));
}

TEST(PrecopyRefreshTest, SplicedRunsReplaceTheSpanAndMergeNeighbours) {
  std::vector<PageRun> runs = {{0x0, 0x4000, PageState::Stored},
                               {0x4000, 0x8000, PageState::NotPresent},
                               {0x8000, 0x10000, PageState::Stored}};
  // Pages 0x5000-0x7000 were written: now stored; the rest of the hole stays a hole.
  spliceRuns(runs, {{0x5000, 0x7000, PageState::Stored}});
  const std::vector<PageRun> expected = {{0x0, 0x4000, PageState::Stored},
                                         {0x4000, 0x5000, PageState::NotPresent},
                                         {0x5000, 0x7000, PageState::Stored},
                                         {0x7000, 0x8000, PageState::NotPresent},
                                         {0x8000, 0x10000, PageState::Stored}};
  ASSERT_EQ(runs.size(), expected.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].start, expected[i].start) << i;
    EXPECT_EQ(runs[i].end, expected[i].end) << i;
    EXPECT_EQ(runs[i].state, expected[i].state) << i;
  }
  // A span that fills the hole joins the stored runs on both sides into one.
  spliceRuns(runs, {{0x4000, 0x8000, PageState::Stored}});
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].start, 0x0u);
  EXPECT_EQ(runs[0].end, 0x10000u);
  EXPECT_EQ(runs[0].state, PageState::Stored);
}

} // namespace
} // namespace procsnap
