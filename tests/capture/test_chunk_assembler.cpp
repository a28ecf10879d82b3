#include "capture/chunk_assembler.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

namespace procsnap {
namespace {

constexpr uint64_t kPage = kAssemblerPageSize;
constexpr uint64_t kBase = 0x10000000;

// Pages to feed: 'd' a data page (non-zero, its bytes say which page it is), 'z' an all-zero
// page, 'n' not present, 'u' unreadable.
struct Feed {
  std::vector<PageRun> runs;
  std::map<uint64_t, std::vector<std::byte>> chunks;
  bool ordered_and_sized = true;
  uint64_t last_end = 0;

  ChunkSink sink() {
    return [this](CopiedChunk&& chunk) -> Result<void> {
      if (chunk.address < last_end || chunk.address % kPage != 0 || chunk.bytes.empty() ||
          chunk.bytes.size() % kPage != 0 || chunk.bytes.size() > kChunkSize)
        ordered_and_sized = false;
      last_end = chunk.address + chunk.bytes.size();
      chunks.emplace(chunk.address, std::move(chunk.bytes));
      return success();
    };
  }
};

std::vector<std::byte> dataPage(uint64_t address) {
  std::vector<std::byte> page(kPage, std::byte{0x5a});
  std::memcpy(page.data(), &address, sizeof address);
  return page;
}

// Feeds pattern through one assembler, releasing the caller's buffer every release_every
// pages (0: never) and scribbling over it, as the copier reuses its scratch buffer.
void feed(Feed& out, const std::string& pattern, size_t release_every = 0) {
  const ChunkSink sink = out.sink();
  ChunkAssembler assembler(out.runs, sink, kBase);
  std::vector<std::byte> buffer(pattern.size() * kPage);
  uint64_t address = kBase;
  for (size_t i = 0; i < pattern.size(); ++i, address += kPage) {
    std::byte* page = buffer.data() + i * kPage;
    const char c = pattern[i];
    if (c == 'd' || c == 'z') {
      if (c == 'd')
        std::memcpy(page, dataPage(address).data(), kPage);
      else
        std::memset(page, 0, kPage);
      ASSERT_TRUE(assembler.addReadPage(page).ok());
    } else {
      ASSERT_TRUE(
          assembler
              .addRange(address + kPage, c == 'n' ? PageState::NotPresent : PageState::Unreadable)
              .ok());
    }
    if (release_every != 0 && (i + 1) % release_every == 0) {
      assembler.releaseBuffers();
      std::memset(buffer.data(), 0xee, (i + 1) * kPage);
    }
  }
  ASSERT_TRUE(assembler.finish().ok());
}

// The runs as a string, one letter per page ('s' stored, 'z' zero, 'n', 'u').
std::string pagesOf(const std::vector<PageRun>& runs) {
  std::string pages;
  uint64_t expected_start = kBase;
  for (const PageRun& run : runs) {
    EXPECT_EQ(run.start, expected_start) << "runs not contiguous";
    expected_start = run.end;
    const char c = run.state == PageState::Stored       ? 's'
                   : run.state == PageState::Zero       ? 'z'
                   : run.state == PageState::NotPresent ? 'n'
                   : run.state == PageState::Unreadable ? 'u'
                                                        : '?';
    pages.append((run.end - run.start) / kPage, c);
  }
  return pages;
}

// Every stored page's bytes are what was fed: data pages their own, zero pages zeros.
void expectChunksHoldTheFeed(const Feed& out, const std::string& pattern) {
  for (const auto& [address, bytes] : out.chunks) {
    for (uint64_t offset = 0; offset < bytes.size(); offset += kPage) {
      const uint64_t page = address + offset;
      const char c = pattern[(page - kBase) / kPage];
      const std::vector<std::byte> expected =
          c == 'd' ? dataPage(page) : std::vector<std::byte>(kPage, std::byte{0});
      EXPECT_EQ(c == 'd' || c == 'z', true) << "page 0x" << std::hex << page;
      EXPECT_EQ(std::memcmp(bytes.data() + offset, expected.data(), kPage), 0)
          << "page 0x" << std::hex << page;
    }
  }
}

std::string repeat(const std::string& part, size_t times) {
  std::string out;
  for (size_t i = 0; i < times; ++i)
    out += part;
  return out;
}

TEST(ChunkAssembler, IsolatedZeroPagesStayInTheChunkAsStored) {
  const std::string pattern = repeat("dddz", 15) + "dddd"; // one zero page in four
  Feed out;
  feed(out, pattern);
  EXPECT_EQ(pagesOf(out.runs), std::string(pattern.size(), 's'));
  ASSERT_EQ(out.runs.size(), 1u);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks.begin()->second.size(), pattern.size() * kPage);
  expectChunksHoldTheFeed(out, pattern);
}

TEST(ChunkAssembler, ZeroRunOfFifteenPagesIsKeptSixteenEndTheChunk) {
  {
    const std::string pattern = "dd" + std::string(kMinZeroRunPages - 1, 'z') + "dd";
    Feed out;
    feed(out, pattern);
    EXPECT_EQ(pagesOf(out.runs), std::string(pattern.size(), 's'));
    EXPECT_EQ(out.chunks.size(), 1u);
    expectChunksHoldTheFeed(out, pattern);
  }
  {
    const std::string pattern = "dd" + std::string(kMinZeroRunPages, 'z') + "dd";
    Feed out;
    feed(out, pattern);
    EXPECT_EQ(pagesOf(out.runs), "ss" + std::string(kMinZeroRunPages, 'z') + "ss");
    EXPECT_EQ(out.chunks.size(), 2u);
    expectChunksHoldTheFeed(out, pattern);
  }
}

TEST(ChunkAssembler, ZeroPagesAtTheEdgesOfStoredDataAreZero) {
  // Nothing stored on one side: storing them would cost bytes and save no chunk boundary.
  const std::string pattern = "zzddzznzzdduzddzz";
  Feed out;
  feed(out, pattern);
  EXPECT_EQ(pagesOf(out.runs), "zzsszznzzssuzsszz");
  EXPECT_EQ(out.chunks.size(), 3u);
  expectChunksHoldTheFeed(out, pattern);
  // A region of zero pages only: no chunk at all.
  Feed zeros;
  feed(zeros, std::string(40, 'z'));
  EXPECT_EQ(pagesOf(zeros.runs), std::string(40, 'z'));
  EXPECT_TRUE(zeros.chunks.empty());
}

TEST(ChunkAssembler, ChunksStayWithinTheChunkSize) {
  // 3.5 MiB of data with short zero runs, and a short run straddling a chunk boundary.
  const uint64_t chunk_pages = kChunkSize / kPage;
  std::string pattern = repeat("ddddddz", static_cast<size_t>(chunk_pages / 2));
  pattern += std::string(chunk_pages - 3 - pattern.size() % chunk_pages, 'd');
  pattern += "zzzzzz"; // crosses the boundary of a full chunk
  pattern += repeat("dzd", static_cast<size_t>(chunk_pages));
  Feed out;
  feed(out, pattern, 97);
  EXPECT_TRUE(out.ordered_and_sized);
  EXPECT_EQ(pagesOf(out.runs), std::string(pattern.size(), 's'));
  uint64_t stored = 0;
  for (const auto& [address, bytes] : out.chunks) {
    EXPECT_EQ(address, kBase + stored) << "chunks not contiguous";
    stored += bytes.size();
  }
  EXPECT_EQ(stored, pattern.size() * kPage);
  EXPECT_EQ(out.chunks.size(), (pattern.size() + chunk_pages - 1) / chunk_pages);
  expectChunksHoldTheFeed(out, pattern);
}

TEST(ChunkAssembler, ReleasedBuffersMayBeReused) {
  const std::string pattern = repeat("dddzdd", 20) + std::string(20, 'z') + repeat("dz", 30) + "d";
  Feed out;
  feed(out, pattern, 5); // the feed buffer is overwritten after every 5 pages
  expectChunksHoldTheFeed(out, pattern);
  EXPECT_EQ(pagesOf(out.runs), std::string(120, 's') + std::string(20, 'z') + std::string(61, 's'));
}

TEST(ChunkAssembler, SinkErrorMakesTheRefusedChunkAndTheRestLost) {
  std::vector<PageRun> runs;
  int calls = 0;
  const ChunkSink sink = [&](CopiedChunk&&) -> Result<void> {
    if (++calls == 2)
      return Error::make(ErrorCode::NoSpace, "disk full");
    return success();
  };
  ChunkAssembler assembler(runs, sink, kBase);
  const std::vector<std::byte> data = dataPage(1);
  const std::vector<std::byte> zero(kPage, std::byte{0});
  ASSERT_TRUE(assembler.addReadPage(data.data()).ok()); // chunk 1: page 0
  ASSERT_TRUE(assembler.addRange(kBase + 2 * kPage, PageState::NotPresent).ok());
  ASSERT_TRUE(assembler.addReadPage(data.data()).ok()); // chunk 2: pages 2-4
  ASSERT_TRUE(assembler.addReadPage(zero.data()).ok());
  ASSERT_TRUE(assembler.addReadPage(data.data()).ok());
  auto ended = assembler.addRange(kBase + 6 * kPage, PageState::NotPresent);
  ASSERT_FALSE(ended.ok());
  EXPECT_EQ(ended.error().code, ErrorCode::NoSpace);
  assembler.markLostAfterSinkError(kBase + 10 * kPage);
  EXPECT_EQ(pagesOf(runs), "sn" + std::string(8, '?'));
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[2].state, PageState::Lost);
  EXPECT_EQ(runs[2].start, kBase + 2 * kPage);
  EXPECT_EQ(runs[2].end, kBase + 10 * kPage);
}

} // namespace
} // namespace procsnap
