#include "capture/memory_copier.h"

#include "capture/capture_policy.h"
#include "capture/chunk_assembler.h"
#include "capture/frozen_process.h"
#include "capture/process_inspector.h"
#include "tests/capture/forked_target.h"
#include "tests/support/sample_process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <optional>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace procsnap {
namespace {

using test::ForkedTarget;
using test::ForkedTargetLayout;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPresentBit = 1ull << 63;
constexpr uint64_t kExclusiveBit = 1ull << 56;

RegionRecord regionAt(uint64_t start, uint64_t end) {
  RegionRecord region;
  region.smaps.map.start = start;
  region.smaps.map.end = end;
  region.smaps.map.perms = {true, true, false, false};
  return region;
}

// What copyRegion handed to the sink, by address, plus consistency checks on the chunks.
struct Collected {
  std::map<uint64_t, std::vector<std::byte>> chunks;
  uint64_t last_end = 0;
  bool in_order = true;
  bool sized_well = true;

  ChunkSink sink() {
    return [this](CopiedChunk&& chunk) -> Result<void> {
      if (chunk.address < last_end)
        in_order = false;
      if (chunk.address % kPage != 0 || chunk.bytes.empty() || chunk.bytes.size() % kPage != 0 ||
          chunk.bytes.size() > kChunkSize)
        sized_well = false;
      last_end = chunk.address + chunk.bytes.size();
      chunks.emplace(chunk.address, std::move(chunk.bytes));
      return success();
    };
  }

  // The stored bytes at [address, address + size), or empty when not all stored.
  std::vector<std::byte> read(uint64_t address, uint64_t size) const {
    std::vector<std::byte> out;
    for (uint64_t at = address; at < address + size;) {
      auto it = chunks.upper_bound(at);
      if (it == chunks.begin())
        return {};
      --it;
      if (at >= it->first + it->second.size())
        return {};
      const uint64_t offset = at - it->first;
      const uint64_t take = std::min<uint64_t>(it->second.size() - offset, address + size - at);
      out.insert(out.end(), it->second.begin() + static_cast<ptrdiff_t>(offset),
                 it->second.begin() + static_cast<ptrdiff_t>(offset + take));
      at += take;
    }
    return out;
  }
};

void expectCoversExactly(const RegionRecord& region) {
  ASSERT_FALSE(region.pages.empty());
  EXPECT_EQ(region.pages.front().start, region.map().start);
  EXPECT_EQ(region.pages.back().end, region.map().end);
  for (size_t i = 0; i < region.pages.size(); ++i) {
    EXPECT_LT(region.pages[i].start, region.pages[i].end);
    if (i > 0) {
      EXPECT_EQ(region.pages[i].start, region.pages[i - 1].end);
      EXPECT_NE(region.pages[i].state, region.pages[i - 1].state) << "runs not merged";
    }
  }
}

PageState stateAt(const RegionRecord& region, uint64_t address) {
  for (const PageRun& run : region.pages)
    if (address >= run.start && address < run.end)
      return run.state;
  ADD_FAILURE() << "address not covered";
  return PageState::Lost;
}

std::vector<std::byte> expectedPattern(uint64_t size) {
  std::vector<std::byte> bytes(size);
  for (uint64_t i = 0; i < size; ++i)
    bytes[i] = test::patternByte(i);
  return bytes;
}

// A child forked from the test: runs setup (which touches only what it must), says so
// through a pipe, then sleeps until killed. Mappings the parent made before start() are the
// child's too, untouched in its page tables unless setup touches them.
class ForkedChild final {
public:
  static std::unique_ptr<ForkedChild> start(const std::function<void()>& setup) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return nullptr;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      ::close(fds[0]);
      ::close(fds[1]);
      return nullptr;
    }
    if (pid == 0) {
      ::close(fds[0]);
      setup();
      const char ready = 'r';
      if (::write(fds[1], &ready, 1) != 1)
        ::_exit(1);
      for (;;)
        ::pause();
    }
    ::close(fds[1]);
    std::unique_ptr<ForkedChild> child(new ForkedChild(pid));
    constexpr int kStartTimeoutMs = 10000;
    pollfd readable{fds[0], POLLIN, 0};
    char ready = 0;
    const bool started =
        ::poll(&readable, 1, kStartTimeoutMs) == 1 && ::read(fds[0], &ready, 1) == 1;
    ::close(fds[0]);
    if (!started) {
      ADD_FAILURE() << "the forked child did not start";
      return nullptr;
    }
    return child;
  }
  ~ForkedChild() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ForkedChild(const ForkedChild&) = delete;
  ForkedChild& operator=(const ForkedChild&) = delete;
  pid_t pid() const { return pid_; }

private:
  explicit ForkedChild(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

// A file of size bytes of patternByte(offset), in dir.
std::string writePatternFile(const test::TempDir& dir, uint64_t size) {
  const std::string path = dir.file("mapped.bin");
  const std::vector<std::byte> bytes = expectedPattern(size);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  return path;
}

// The present bit of every page of [start, end) in pid's pagemap.
std::vector<bool> presentPages(pid_t pid, uint64_t start, uint64_t end) {
  std::vector<bool> present;
  for (uint64_t page = start; page < end; page += kPage)
    present.push_back((test::pagemapEntry(pid, page) & kPresentBit) != 0);
  return present;
}

// The region of pid that starts at start, as readRegions describes it.
std::optional<RegionRecord> regionStartingAt(pid_t pid, uint64_t start) {
  auto regions = readRegions(pid, {});
  EXPECT_TRUE(regions.ok()) << regions.error().message;
  if (regions.ok()) {
    for (RegionRecord& region : *regions)
      if (region.map().start == start)
        return std::move(region);
  }
  ADD_FAILURE() << "no region at 0x" << std::hex << start;
  return std::nullopt;
}

// A private file mapping, mapped in the parent before the child is forked (so the child
// inherits it without a single page in its page tables), copied while the child is frozen.
struct CopiedFileMapping {
  std::unique_ptr<ForkedChild> child;
  RegionRecord region;
  Collected collected;
  CopyStats stats;
  std::vector<bool> present_before;
  std::vector<bool> present_after;
};

void copyFileMapping(const std::string& path, uint64_t map_size, uint64_t file_offset, int prot,
                     bool unlink_before_copy, const std::function<void(std::byte*)>& child_setup,
                     CopiedFileMapping& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* mapped = ::mmap(nullptr, map_size, prot, MAP_PRIVATE, fd, static_cast<off_t>(file_offset));
  ::close(fd);
  ASSERT_NE(mapped, MAP_FAILED);
  auto* bytes = static_cast<std::byte*>(mapped);
  out.child = ForkedChild::start([&] { child_setup(bytes); });
  ::munmap(mapped, map_size); // the parent's view is not needed: the child holds its own
  ASSERT_TRUE(out.child);
  if (unlink_before_copy) {
    ASSERT_EQ(::unlink(path.c_str()), 0);
  }
  const pid_t pid = out.child->pid();
  const uint64_t start = reinterpret_cast<uintptr_t>(mapped);
  auto region = regionStartingAt(pid, start);
  ASSERT_TRUE(region);
  out.region = std::move(*region);
  ASSERT_EQ(out.region.map().end, start + map_size);
  out.present_before = presentPages(pid, start, start + map_size);
  auto frozen = FrozenProcess::freeze(pid);
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  MemoryCopier copier(pid);
  auto copied = copier.copyRegion(out.region, out.collected.sink());
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  ASSERT_TRUE((*frozen)->thaw().ok());
  out.stats = copier.stats();
  out.present_after = presentPages(pid, start, start + map_size);
  expectCoversExactly(out.region);
  EXPECT_TRUE(out.collected.in_order);
  EXPECT_TRUE(out.collected.sized_well);
}

class MemoryCopierTest : public ::testing::Test {
protected:
  void SetUp() override {
    target_ = ForkedTarget::start({.sleeping_threads = 1});
    ASSERT_TRUE(target_);
  }
  const ForkedTargetLayout& layout() const { return target_->layout(); }
  std::unique_ptr<ForkedTarget> target_;
};

TEST_F(MemoryCopierTest, PatternRegionIsStoredInChunks) {
  auto frozen = FrozenProcess::freeze(target_->pid());
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  MemoryCopier copier(target_->pid());
  RegionRecord region = regionAt(layout().pattern, layout().pattern + layout().pattern_size);
  Collected collected;
  ASSERT_TRUE(copier.copyRegion(region, collected.sink()).ok());
  expectCoversExactly(region);
  ASSERT_EQ(region.pages.size(), 1u);
  EXPECT_EQ(region.pages[0].state, PageState::Stored);
  EXPECT_TRUE(collected.in_order);
  EXPECT_TRUE(collected.sized_well);
  EXPECT_EQ(collected.chunks.size(), 4u); // 3 MiB + 8 KiB in pieces of at most 1 MiB
  EXPECT_EQ(collected.read(layout().pattern, layout().pattern_size),
            expectedPattern(layout().pattern_size));
  EXPECT_EQ(copier.stats().bytes_copied, layout().pattern_size);
  EXPECT_EQ(copier.stats().bytes_zero, 0u);
  EXPECT_TRUE(copier.stats().used_pagemap_scan); // kernel 6.18 here
  EXPECT_LE(copier.stats().vm_readv_calls, 1u);
}

TEST_F(MemoryCopierTest, MixedRegionHasStoredZeroAndNotPresentPages) {
  auto frozen = FrozenProcess::freeze(target_->pid());
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  MemoryCopier copier(target_->pid());
  const uint64_t base = layout().mixed;
  RegionRecord region = regionAt(base, base + test::kMixedPages * kPage);
  Collected collected;
  ASSERT_TRUE(copier.copyRegion(region, collected.sink()).ok());
  expectCoversExactly(region);
  const std::vector<PageRun> expected = {
      {base, base + 4 * kPage, PageState::Stored},
      {base + 4 * kPage, base + 8 * kPage, PageState::Zero},
      {base + 8 * kPage, base + 12 * kPage, PageState::NotPresent},
      {base + 12 * kPage, base + 16 * kPage, PageState::Stored},
  };
  ASSERT_EQ(region.pages.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(region.pages[i].start, expected[i].start) << i;
    EXPECT_EQ(region.pages[i].end, expected[i].end) << i;
    EXPECT_EQ(region.pages[i].state, expected[i].state) << i;
  }
  // Zero pages next to not-present ones are Zero, not kept in a chunk: one chunk per stored
  // run.
  EXPECT_EQ(collected.chunks.size(), 2u);
  EXPECT_EQ(collected.read(base, 4 * kPage), expectedPattern(4 * kPage));
  EXPECT_EQ(collected.read(base + 12 * kPage, 4 * kPage), expectedPattern(4 * kPage));
  EXPECT_EQ(copier.stats().bytes_zero, 4 * kPage);
  EXPECT_EQ(copier.stats().bytes_not_present, 4 * kPage);
  EXPECT_EQ(copier.stats().bytes_copied, 12 * kPage);
}

TEST_F(MemoryCopierTest, PlainPagemapGivesTheSameAnswerAsPagemapScan) {
  auto frozen = FrozenProcess::freeze(target_->pid());
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  const uint64_t ranges[][2] = {
      {layout().mixed, layout().mixed + test::kMixedPages * kPage},
      {layout().pattern, layout().pattern + layout().pattern_size},
      {layout().untouched, layout().untouched + test::kUntouchedSize},
      {layout().prot_none, layout().prot_none + test::kProtNonePages * kPage}};
  MemoryCopier scanning(target_->pid(), true);
  MemoryCopier plain(target_->pid(), false);
  Collected scanned_chunks, plain_chunks;
  for (const auto& range : ranges) {
    RegionRecord by_scan = regionAt(range[0], range[1]);
    RegionRecord by_pagemap = regionAt(range[0], range[1]);
    ASSERT_TRUE(scanning.copyRegion(by_scan, scanned_chunks.sink()).ok());
    ASSERT_TRUE(plain.copyRegion(by_pagemap, plain_chunks.sink()).ok());
    ASSERT_EQ(by_scan.pages.size(), by_pagemap.pages.size());
    for (size_t i = 0; i < by_scan.pages.size(); ++i) {
      EXPECT_EQ(by_scan.pages[i].start, by_pagemap.pages[i].start);
      EXPECT_EQ(by_scan.pages[i].end, by_pagemap.pages[i].end);
      EXPECT_EQ(by_scan.pages[i].state, by_pagemap.pages[i].state);
    }
  }
  EXPECT_EQ(scanned_chunks.chunks, plain_chunks.chunks);
  EXPECT_TRUE(scanning.stats().used_pagemap_scan);
  EXPECT_FALSE(plain.stats().used_pagemap_scan);
}

TEST_F(MemoryCopierTest, UntouchedAndZeroPageRegionsAreNotPresentAndStaySo) {
  const pid_t pid = target_->pid();
  // Before: nothing of the untouched region is present; the read-only region maps the zero page.
  for (uint64_t offset = 0; offset < test::kUntouchedSize; offset += 1u << 20)
    ASSERT_EQ(test::pagemapEntry(pid, layout().untouched + offset) & kPresentBit, 0u);
  const uint64_t zero_read_entry = test::pagemapEntry(pid, layout().zero_read);
  ASSERT_NE(zero_read_entry & kPresentBit, 0u);
  // The shared zero page is never mapped exclusively; a private zero-filled page is.
  const bool zero_page_mapped = (zero_read_entry & kExclusiveBit) == 0;

  auto frozen = FrozenProcess::freeze(pid);
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  MemoryCopier copier(pid);
  Collected collected;
  RegionRecord untouched = regionAt(layout().untouched, layout().untouched + test::kUntouchedSize);
  ASSERT_TRUE(copier.copyRegion(untouched, collected.sink()).ok());
  RegionRecord zero_read = regionAt(layout().zero_read, layout().zero_read + test::kZeroReadSize);
  ASSERT_TRUE(copier.copyRegion(zero_read, collected.sink()).ok());
  ASSERT_TRUE((*frozen)->thaw().ok());

  expectCoversExactly(untouched);
  ASSERT_EQ(untouched.pages.size(), 1u);
  EXPECT_EQ(untouched.pages[0].state, PageState::NotPresent);
  expectCoversExactly(zero_read);
  ASSERT_EQ(zero_read.pages.size(), 1u);
  if (zero_page_mapped) {
    // Zero-page-backed pages hold nothing: not present, and never read.
    EXPECT_EQ(zero_read.pages[0].state, PageState::NotPresent);
    EXPECT_EQ(copier.stats().vm_readv_calls, 0u);
    EXPECT_EQ(copier.stats().bytes_not_present, test::kUntouchedSize + test::kZeroReadSize);
  } else {
    // This kernel has no shared zero page (pvm_no_zero_page=1): the read faults allocated
    // real zero-filled pages, which are read and found all zero.
    EXPECT_EQ(zero_read.pages[0].state, PageState::Zero);
    EXPECT_EQ(copier.stats().bytes_zero, test::kZeroReadSize);
    EXPECT_EQ(copier.stats().bytes_not_present, test::kUntouchedSize);
  }
  EXPECT_TRUE(collected.chunks.empty());

  // The zero-page trap: the copy did not make a single page of the target present.
  for (uint64_t offset = 0; offset < test::kUntouchedSize; offset += kPage)
    ASSERT_EQ(test::pagemapEntry(pid, layout().untouched + offset) & kPresentBit, 0u)
        << "page at offset " << offset << " became present";
}

TEST_F(MemoryCopierTest, ProtNoneRegionIsReadThroughProcMem) {
  auto frozen = FrozenProcess::freeze(target_->pid());
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  MemoryCopier copier(target_->pid());
  const uint64_t size = test::kProtNonePages * kPage;
  RegionRecord region = regionAt(layout().prot_none, layout().prot_none + size);
  region.smaps.map.perms = {};
  Collected collected;
  ASSERT_TRUE(copier.copyRegion(region, collected.sink()).ok());
  expectCoversExactly(region);
  ASSERT_EQ(region.pages.size(), 1u);
  EXPECT_EQ(region.pages[0].state, PageState::Stored);
  EXPECT_EQ(collected.read(layout().prot_none, size), expectedPattern(size));
  EXPECT_EQ(copier.stats().mem_fallback_bytes, size);
}

TEST_F(MemoryCopierTest, KernelRefusedPagesAreUnreadable) {
  // [vvar] cannot be read by either path; the copier must say so, not fail or loop.
  auto regions = readRegions(target_->pid(), {});
  ASSERT_TRUE(regions.ok()) << regions.error().message;
  auto vvar = std::find_if(regions->begin(), regions->end(),
                           [](const RegionRecord& r) { return r.map().path == "[vvar]"; });
  if (vvar == regions->end())
    GTEST_SKIP() << "no [vvar] mapping";
  MemoryCopier copier(target_->pid());
  Collected collected;
  auto copied = copier.copyRegion(*vvar, collected.sink());
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  expectCoversExactly(*vvar);
  for (const PageRun& run : vvar->pages)
    EXPECT_TRUE(run.state == PageState::Unreadable || run.state == PageState::NotPresent);
  EXPECT_TRUE(collected.chunks.empty());
}

TEST_F(MemoryCopierTest, DeadTargetGivesProcessGoneWithLostPages) {
  MemoryCopier copier(target_->pid());
  Collected collected;
  RegionRecord first = regionAt(layout().mixed, layout().mixed + test::kMixedPages * kPage);
  ASSERT_TRUE(copier.copyRegion(first, collected.sink()).ok());
  target_->kill();
  RegionRecord second = regionAt(layout().pattern, layout().pattern + layout().pattern_size);
  auto copied = copier.copyRegion(second, collected.sink());
  ASSERT_FALSE(copied.ok());
  EXPECT_EQ(copied.error().code, ErrorCode::ProcessGone);
  expectCoversExactly(second);
  ASSERT_EQ(second.pages.size(), 1u);
  EXPECT_EQ(second.pages[0].state, PageState::Lost);
  EXPECT_EQ(copier.stats().bytes_lost, layout().pattern_size);
}

TEST(MemoryCopierDyingTargetTest, TargetDyingMidRegionLosesTheRest) {
  // A region larger than one copy batch: the target is killed from the sink after the first
  // chunk, so later batches find it gone.
  constexpr uint64_t kBig = kCopyBatchBytes + (2u << 20);
  auto target = ForkedTarget::start({.pattern_bytes = kBig});
  ASSERT_TRUE(target);
  const uint64_t base = target->layout().pattern;
  MemoryCopier copier(target->pid());
  RegionRecord region = regionAt(base, base + kBig);
  uint64_t stored = 0;
  bool killed = false;
  auto copied = copier.copyRegion(region, [&](CopiedChunk&& chunk) -> Result<void> {
    stored += chunk.bytes.size();
    if (!killed) {
      target->kill();
      killed = true;
    }
    return success();
  });
  ASSERT_FALSE(copied.ok());
  EXPECT_EQ(copied.error().code, ErrorCode::ProcessGone);
  expectCoversExactly(region);
  ASSERT_EQ(region.pages.size(), 2u);
  EXPECT_EQ(region.pages[0].state, PageState::Stored);
  EXPECT_EQ(region.pages[1].state, PageState::Lost);
  EXPECT_EQ(region.pages[0].end - region.pages[0].start, stored);
  EXPECT_GT(copier.stats().bytes_lost, 0u);
}

TEST_F(MemoryCopierTest, SinkErrorStopsTheCopy) {
  MemoryCopier copier(target_->pid());
  RegionRecord region = regionAt(layout().pattern, layout().pattern + layout().pattern_size);
  int calls = 0;
  auto copied = copier.copyRegion(region, [&](CopiedChunk&&) -> Result<void> {
    ++calls;
    return Error::make(ErrorCode::NoSpace, "disk full");
  });
  ASSERT_FALSE(copied.ok());
  EXPECT_EQ(copied.error().code, ErrorCode::NoSpace);
  EXPECT_EQ(calls, 1);
  expectCoversExactly(region);
}

TEST(MemoryCopierZeroRunTest, ShortZeroRunsStayInTheChunkLongOnesAreZero) {
  // 64 pages with every fourth page zero, a 20-page (80 KiB) zero run, 16 pages of pattern.
  constexpr uint64_t kPages = 100;
  constexpr uint64_t kZeroRunStart = 64;
  constexpr uint64_t kZeroRunEnd = 84;
  void* mapped =
      ::mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  auto* bytes = static_cast<std::byte*>(mapped);
  const std::vector<std::byte> pattern = expectedPattern(kPages * kPage);
  auto isZeroPage = [&](uint64_t page) {
    return (page < kZeroRunStart && page % 4 == 1) || (page >= kZeroRunStart && page < kZeroRunEnd);
  };
  std::vector<std::byte> expected = pattern;
  for (uint64_t page = 0; page < kPages; ++page)
    if (isZeroPage(page))
      std::memset(expected.data() + page * kPage, 0, kPage);
  // The child writes every page, zeros included, so every page is present and exclusive.
  auto child = ForkedChild::start([&] { std::memcpy(bytes, expected.data(), expected.size()); });
  ::munmap(mapped, kPages * kPage);
  ASSERT_TRUE(child);
  const uint64_t base = reinterpret_cast<uintptr_t>(mapped);
  ASSERT_EQ(presentPages(child->pid(), base, base + kPages * kPage),
            std::vector<bool>(kPages, true));

  auto frozen = FrozenProcess::freeze(child->pid());
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  MemoryCopier copier(child->pid());
  RegionRecord region = regionAt(base, base + kPages * kPage);
  Collected collected;
  ASSERT_TRUE(copier.copyRegion(region, collected.sink()).ok());
  ASSERT_TRUE((*frozen)->thaw().ok());

  expectCoversExactly(region);
  const std::vector<PageRun> runs = {
      {base, base + kZeroRunStart * kPage, PageState::Stored},
      {base + kZeroRunStart * kPage, base + kZeroRunEnd * kPage, PageState::Zero},
      {base + kZeroRunEnd * kPage, base + kPages * kPage, PageState::Stored},
  };
  ASSERT_EQ(region.pages.size(), runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(region.pages[i].start, runs[i].start) << i;
    EXPECT_EQ(region.pages[i].end, runs[i].end) << i;
    EXPECT_EQ(region.pages[i].state, runs[i].state) << i;
  }
  static_assert(kZeroRunEnd - kZeroRunStart >= kMinZeroRunPages);
  // One chunk for the first 64 pages, isolated zero pages included, one for the rest.
  ASSERT_EQ(collected.chunks.size(), 2u);
  EXPECT_EQ(collected.chunks.begin()->first, base);
  EXPECT_EQ(collected.chunks.begin()->second.size(), kZeroRunStart * kPage);
  const uint64_t tail = kZeroRunEnd * kPage;
  EXPECT_EQ(collected.read(base, kZeroRunStart * kPage),
            std::vector<std::byte>(expected.begin(), expected.begin() + kZeroRunStart * kPage));
  EXPECT_EQ(collected.read(base + tail, kPages * kPage - tail),
            std::vector<std::byte>(expected.begin() + tail, expected.end()));
  EXPECT_EQ(copier.stats().bytes_zero, (kZeroRunEnd - kZeroRunStart) * kPage);
  EXPECT_EQ(copier.stats().bytes_copied, kPages * kPage);
}

TEST(MemoryCopierFileTest, UntouchedPrivateFileMappingIsReadFromTheFile) {
  auto dir = test::TempDir::create("procsnap-copier");
  ASSERT_TRUE(dir.ok());
  constexpr uint64_t kFilePages = 6;
  constexpr uint64_t kMapPages = 5; // from file offset one page: the file's last five pages
  const std::string path = writePatternFile(*dir, kFilePages * kPage);
  CopiedFileMapping copied;
  copyFileMapping(
      path, kMapPages * kPage, kPage, PROT_READ, false, [](std::byte*) {}, copied);
  ASSERT_TRUE(copied.child);
  const RegionRecord& region = copied.region;
  EXPECT_EQ(copied.present_before, std::vector<bool>(kMapPages, false));
  // Read from the file, not from the target: its page tables are as they were.
  EXPECT_EQ(copied.present_after, copied.present_before);
  EXPECT_EQ(copied.stats.vm_readv_calls, 0u);
  EXPECT_EQ(copied.stats.bytes_from_file, kMapPages * kPage);
  ASSERT_EQ(region.pages.size(), 1u);
  EXPECT_EQ(region.pages[0].state, PageState::Stored);
  const std::vector<std::byte> file = expectedPattern(kFilePages * kPage);
  EXPECT_EQ(copied.collected.read(region.map().start, kMapPages * kPage),
            std::vector<std::byte>(file.begin() + kPage, file.end()));
  EXPECT_TRUE(region.note.empty()) << region.note;
}

TEST(MemoryCopierFileTest, DeletedFileMappingIsReadThroughMapFiles) {
  auto dir = test::TempDir::create("procsnap-copier");
  ASSERT_TRUE(dir.ok());
  constexpr uint64_t kPages = 3;
  const std::string path = writePatternFile(*dir, kPages * kPage);
  CopiedFileMapping copied;
  copyFileMapping(
      path, kPages * kPage, 0, PROT_READ, true, [](std::byte*) {}, copied);
  ASSERT_TRUE(copied.child);
  EXPECT_TRUE(copied.region.map().deleted);
  ASSERT_EQ(copied.region.pages.size(), 1u);
  EXPECT_EQ(copied.region.pages[0].state, PageState::Stored);
  EXPECT_EQ(copied.collected.read(copied.region.map().start, kPages * kPage),
            expectedPattern(kPages * kPage));
  EXPECT_EQ(copied.present_after, std::vector<bool>(kPages, false));
}

TEST(MemoryCopierFileTest, FileMappingPastTheEndOfTheFile) {
  auto dir = test::TempDir::create("procsnap-copier");
  ASSERT_TRUE(dir.ok());
  // Two pages and 100 bytes of file under a six-page mapping: page 2 is partly file, partly
  // the zeros the kernel fills in; pages 3-5 would be SIGBUS in the target.
  constexpr uint64_t kFileSize = 2 * kPage + 100;
  constexpr uint64_t kMapPages = 6;
  const std::string path = writePatternFile(*dir, kFileSize);
  // The child writes into page 0 (a copy-on-write page of its own): that page must come
  // from its memory, the others from the file.
  const char kWritten[] = "written by the target";
  CopiedFileMapping copied;
  copyFileMapping(
      path, kMapPages * kPage, 0, PROT_READ | PROT_WRITE, false,
      [&](std::byte* bytes) { std::memcpy(bytes, kWritten, sizeof kWritten); }, copied);
  ASSERT_TRUE(copied.child);
  const RegionRecord& region = copied.region;
  const uint64_t start = region.map().start;
  ASSERT_TRUE(copied.present_before[0]);
  EXPECT_EQ(copied.present_after, copied.present_before);
  ASSERT_EQ(region.pages.size(), 2u);
  EXPECT_EQ(region.pages[0].state, PageState::Stored);
  EXPECT_EQ(region.pages[0].end, start + 3 * kPage);
  EXPECT_EQ(region.pages[1].state, PageState::Unreadable);
  std::vector<std::byte> expected = expectedPattern(3 * kPage);
  std::memset(expected.data() + kFileSize, 0, 3 * kPage - kFileSize);
  std::memcpy(expected.data(), kWritten, sizeof kWritten);
  EXPECT_EQ(copied.collected.read(start, 3 * kPage), expected);
  EXPECT_EQ(copied.stats.bytes_unreadable, 3 * kPage);
  EXPECT_NE(region.note.find("SIGBUS"), std::string::npos) << region.note;
}

TEST(MemoryCopierSampleTest, SampleRegionsHoldTheTruth) {
  auto sample = test::SampleProcess::start(test::SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  const pid_t pid = (*sample)->pid();
  const auto& truth = (*sample)->truth();
  auto frozen = FrozenProcess::freeze(pid);
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  auto regions = readRegions(pid, (*frozen)->stackPointers());
  ASSERT_TRUE(regions.ok()) << regions.error().message;
  auto info = readProcessInfo(pid, false);
  ASSERT_TRUE(info.ok());
  CapturePolicy policy;
  policy.coredump_filter = info->coredump_filter;
  MemoryCopier copier(pid);
  Collected collected;
  for (RegionRecord& region : *regions) {
    if (auto excluded = regionExclusion(region, policy)) {
      markWholeRegion(region, *excluded);
      continue;
    }
    auto copied = copier.copyRegion(region, collected.sink());
    ASSERT_TRUE(copied.ok()) << copied.error().message;
    expectCoversExactly(region);
  }
  ASSERT_TRUE((*frozen)->thaw().ok());
  EXPECT_TRUE(collected.in_order);
  EXPECT_TRUE(collected.sized_well);

  auto bytesOf = [](const std::string& text) {
    std::vector<std::byte> bytes(text.size());
    std::memcpy(bytes.data(), text.data(), text.size());
    return bytes;
  };
  auto regionOf = [&](uint64_t address) -> const RegionRecord* {
    for (const RegionRecord& region : *regions)
      if (address >= region.map().start && address < region.map().end)
        return &region;
    return nullptr;
  };
  // file_mapping: a private file mapping the sample never touched, read from the file.
  for (const char* key :
       {"data_message", "rodata_string", "heap_small", "heap_large", "file_mapping"}) {
    SCOPED_TRACE(key);
    const std::string value = truth[key]["value"];
    const uint64_t address = test::addressOf(truth[key]["addr"]);
    EXPECT_EQ(collected.read(address, value.size()), bytesOf(value));
  }
  for (const auto& thread : truth["threads"]) {
    const std::string marker = thread["stack_marker"];
    EXPECT_EQ(collected.read(test::addressOf(thread["stack_marker_addr"]), marker.size()),
              bytesOf(marker));
    const RegionRecord* stack = regionOf(test::addressOf(thread["stack_marker_addr"]));
    ASSERT_NE(stack, nullptr);
    EXPECT_EQ(stack->kind, RegionKind::ThreadStack);
  }
  // The 32 GiB reservation: not present, never read, still not present afterwards.
  const uint64_t reservation = test::addressOf(truth["reservation"]["addr"]);
  const RegionRecord* reserved = regionOf(reservation);
  ASSERT_NE(reserved, nullptr);
  EXPECT_EQ(stateAt(*reserved, reservation), PageState::NotPresent);
  EXPECT_EQ(test::pagemapEntry(pid, reservation) & kPresentBit, 0u);
  EXPECT_EQ(test::pagemapEntry(pid, reservation + (1ull << 34)) & kPresentBit, 0u);
  // MADV_DONTDUMP: excluded, and its secret is nowhere in the chunks.
  const uint64_t dontdump = test::addressOf(truth["dontdump"]["addr"]);
  ASSERT_NE(regionOf(dontdump), nullptr);
  EXPECT_EQ(stateAt(*regionOf(dontdump), dontdump), PageState::ExcludedDontDump);
  EXPECT_TRUE(collected.read(dontdump, 16).empty());
  // The shared memfd mapping is excluded by the default filter's bit 1? No: 0x33 has bit 1
  // set, so shared anonymous memory (memfd counts as such) is stored.
  const std::string memfd_value = truth["memfd"]["value"];
  EXPECT_EQ(collected.read(test::addressOf(truth["memfd"]["addr"]), memfd_value.size()),
            bytesOf(memfd_value));
}

} // namespace
} // namespace procsnap
