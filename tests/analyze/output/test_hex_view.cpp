#include "analyze/output/hex_view.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace procsnap::analyze {
namespace {

std::vector<HexRow> build(uint64_t start, const std::vector<uint8_t>& bytes,
                          const std::vector<ReadRun>& runs, size_t block = 0) {
  std::vector<HexRow> rows;
  HexViewBuilder builder(start, [&](const HexRow& row) { rows.push_back(row); });
  if (block == 0)
    block = bytes.size();
  for (size_t done = 0; done < bytes.size(); done += block) {
    size_t size = std::min(block, bytes.size() - done);
    builder.add(start + done, std::span(bytes).subspan(done, size), runs);
  }
  builder.finish();
  return rows;
}

ReadRun run(uint64_t start, uint64_t end, PageState state, bool mapped = true) {
  ReadRun r;
  r.start = start;
  r.end = end;
  r.state = state;
  r.mapped = mapped;
  r.region_index = mapped ? 0 : -1;
  return r;
}

TEST(HexView, FormatsRowsLikeXxd) {
  std::string text = "Hello, world!\n\x01\xff"
                     "abc";
  std::vector<uint8_t> bytes(text.begin(), text.end());
  auto rows = build(0x1000, bytes, {run(0x1000, 0x1000 + bytes.size(), PageState::Stored)});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].kind, HexRow::Kind::Bytes);
  EXPECT_EQ(rows[0].address, 0x1000u);
  EXPECT_EQ(rows[0].size, 16u);
  EXPECT_EQ(rows[0].groupedHex(), "4865 6c6c 6f2c 2077 6f72 6c64 210a 01ff");
  EXPECT_EQ(rows[0].plainHex(), "48656c6c6f2c20776f726c64210a01ff");
  EXPECT_EQ(rows[0].ascii(), "Hello, world!...");
  EXPECT_EQ(rows[1].address, 0x1010u);
  EXPECT_EQ(rows[1].size, 3u);
  EXPECT_EQ(rows[1].groupedHex(), "6162 63                                ");
  EXPECT_EQ(rows[1].groupedHex().size(), rows[0].groupedHex().size());
  EXPECT_EQ(rows[1].ascii(), "abc");
}

TEST(HexView, CollapsesWholeUnstoredRowsByReason) {
  // 0x0000-0x1000 stored, 0x1000-0x3000 not present, 0x3000-0x4000 excluded, then unmapped.
  std::vector<uint8_t> bytes(0x5000, 0);
  for (size_t i = 0; i < 0x1000; ++i)
    bytes[i] = static_cast<uint8_t>(i);
  std::vector<ReadRun> runs = {run(0, 0x1000, PageState::Stored),
                               run(0x1000, 0x3000, PageState::NotPresent),
                               run(0x3000, 0x4000, PageState::ExcludedDontDump),
                               run(0x4000, 0x5000, PageState::NotPresent, false)};
  for (size_t block : {size_t{0}, size_t{0x100}, size_t{7}}) {
    auto rows = build(0, bytes, runs, block);
    ASSERT_EQ(rows.size(), 0x100u + 3) << "block " << block;
    EXPECT_EQ(rows[0xff].address, 0xff0u);
    EXPECT_EQ(rows[0xff].kind, HexRow::Kind::Bytes);
    const HexRow& absent = rows[0x100];
    EXPECT_EQ(absent.kind, HexRow::Kind::NotStored);
    EXPECT_EQ(absent.address, 0x1000u);
    EXPECT_EQ(absent.size, 0x2000u);
    EXPECT_EQ(absent.notStoredSummary(), "8192 bytes not stored (not-present)");
    EXPECT_EQ(absent.reason(), "not-present");
    EXPECT_EQ(rows[0x101].state, PageState::ExcludedDontDump);
    EXPECT_EQ(rows[0x101].size, 0x1000u);
    EXPECT_FALSE(rows[0x102].mapped);
    EXPECT_EQ(rows[0x102].notStoredSummary(), "4096 bytes not mapped");
    EXPECT_EQ(rows[0x102].reason(), "unmapped");
  }
}

TEST(HexView, MarksUnknownBytesInsideAMixedRow) {
  // Rows start at 0xff8, so the row at 0xff8 straddles the end of the stored page.
  std::vector<uint8_t> bytes(0x20, 0x41);
  for (size_t i = 8; i < 0x20; ++i)
    bytes[i] = 0; // what read() gives for unstored bytes
  auto rows =
      build(0xff8, bytes,
            {run(0xff8, 0x1000, PageState::Stored), run(0x1000, 0x1018, PageState::NotPresent)});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].kind, HexRow::Kind::Bytes);
  EXPECT_EQ(rows[0].groupedHex(), "4141 4141 4141 4141 ---- ---- ---- ----");
  EXPECT_EQ(rows[0].plainHex(), "4141414141414141----------------");
  EXPECT_EQ(rows[0].ascii(), "AAAAAAAA        ");
  EXPECT_EQ(rows[1].kind, HexRow::Kind::NotStored);
  EXPECT_EQ(rows[1].address, 0x1008u);
  EXPECT_EQ(rows[1].size, 0x10u);
}

TEST(HexView, ZeroPagesAreKnownZeros) {
  std::vector<uint8_t> bytes(0x30, 0);
  bytes[0] = 0x7a;
  auto rows = build(0, bytes, {run(0, 0x8, PageState::Stored), run(0x8, 0x30, PageState::Zero)});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].groupedHex(), "7a00 0000 0000 0000 0000 0000 0000 0000");
  EXPECT_EQ(rows[1].kind, HexRow::Kind::NotStored);
  EXPECT_EQ(rows[1].state, PageState::Zero);
  EXPECT_EQ(rows[1].size, 0x20u);
  EXPECT_EQ(rows[1].notStoredSummary(), "32 bytes of zeros (pages read as all zeros)");
}

TEST(HexView, AddressPadding) {
  EXPECT_EQ(hexDigitsFor(0x1000), 8);
  EXPECT_EQ(hexDigitsFor(0x7ffd00000000), 12);
  EXPECT_EQ(hexDigitsFor(0), 8);
  EXPECT_EQ(paddedHex(0x1a2b, 8), "0x00001a2b");
  EXPECT_EQ(paddedHex(0x7ffd12345678, 12), "0x7ffd12345678");
}

} // namespace
} // namespace procsnap::analyze
