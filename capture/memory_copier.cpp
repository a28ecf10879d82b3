#include "capture/memory_copier.h"

#include "capture/pagemap_scan.h"
#include "capture/process_inspector.h"
#include "common/proc_files.h"
#include "common/proc_status.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

namespace procsnap {

namespace {

constexpr uint64_t kPageSize = 4096;
static_assert(kChunkSize % kPageSize == 0);
// page_region entries per PAGEMAP_SCAN call: 96 KiB of results, so a call covers a whole
// region except in badly fragmented memory (the walk then continues from walk_end).
constexpr size_t kScanVectorLength = 4096;
// pagemap entries per pread in the fallback: 512 KiB, i.e. 256 MiB of address space.
constexpr size_t kPagemapBatchEntries = 1u << 16;
// One process_vm_readv call reads at most this many pieces (the kernel's UIO_MAXIOV), and at
// most kCopyBatchBytes (memory_copier.h).
constexpr size_t kMaxIovecs = IOV_MAX;

// pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPagemapPresent = 1ull << 63;
constexpr uint64_t kPagemapSwapped = 1ull << 62;
constexpr uint64_t kPagemapFileOrShared = 1ull << 61;
constexpr uint64_t kPagemapPfnMask = (1ull << 55) - 1;

// The PFN of the shared zero page, found once by read-faulting two pages of our own and
// reading our own pagemap: both must map one PFN, not exclusively. Zero when PFNs are hidden
// (no CAP_SYS_ADMIN) or when the kernel has no zero page (e.g. booted with
// pvm_no_zero_page=1, where a read fault allocates a fresh exclusive page).
uint64_t sharedZeroPfn() {
  static const uint64_t pfn = [] {
    constexpr uint64_t kExclusive = 1ull << 56;
    void* pages = ::mmap(nullptr, 2 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED)
      return uint64_t{0};
    // A read fault on untouched private anonymous memory maps the shared zero page.
    (void)static_cast<volatile const char*>(pages)[0];
    (void)static_cast<volatile const char*>(pages)[kPageSize];
    uint64_t entries[2] = {};
    const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      const off_t offset = static_cast<off_t>(reinterpret_cast<uintptr_t>(pages) / kPageSize * 8);
      if (::pread(fd, entries, sizeof entries, offset) != sizeof entries)
        entries[0] = entries[1] = 0;
      ::close(fd);
    }
    ::munmap(pages, 2 * kPageSize);
    const uint64_t first = entries[0] & kPagemapPfnMask;
    const bool shared_zero = (entries[0] & kPagemapPresent) && (entries[1] & kPagemapPresent) &&
                             !(entries[0] & kExclusive) && first != 0 &&
                             first == (entries[1] & kPagemapPfnMask);
    return shared_zero ? first : uint64_t{0};
  }();
  return pfn;
}

bool pageIsZero(const std::byte* page) {
  uint64_t words[8];
  for (uint64_t offset = 0; offset < kPageSize; offset += sizeof words) {
    std::memcpy(words, page + offset, sizeof words);
    if ((words[0] | words[1] | words[2] | words[3] | words[4] | words[5] | words[6] | words[7]) !=
        0)
      return false;
  }
  return true;
}

// Appends [start, end) in state to runs, merging with the last run when it continues it.
void appendRun(std::vector<PageRun>& runs, uint64_t start, uint64_t end, PageState state) {
  if (start >= end)
    return;
  if (!runs.empty() && runs.back().end == start && runs.back().state == state) {
    runs.back().end = end;
    return;
  }
  runs.push_back(PageRun{start, end, state});
}

// A page-aligned part of a present range, at most kChunkSize, read in one piece.
struct Piece {
  uint64_t start = 0;
  uint64_t end = 0;
  std::byte* bytes = nullptr; // in the copier's scratch buffer
  // Per-page outcome when a fallback read was needed; empty when every page was read.
  std::vector<PageState> page_states;
  uint64_t size() const { return end - start; }
};

} // namespace

MemoryCopier::MemoryCopier(pid_t pid, bool allow_pagemap_scan)
    : pid_(pid), scan_supported_(allow_pagemap_scan) {}

MemoryCopier::~MemoryCopier() {
  if (pagemap_fd_ >= 0)
    ::close(pagemap_fd_);
  if (mem_fd_ >= 0)
    ::close(mem_fd_);
}

bool MemoryCopier::targetGone() const {
  return processExited(pid_);
}

Result<void> MemoryCopier::openFiles() {
  if (files_opened_)
    return success();
  const std::string base = "/proc/" + std::to_string(pid_);
  for (auto [name, fd] : {std::pair{"/pagemap", &pagemap_fd_}, std::pair{"/mem", &mem_fd_}}) {
    if (*fd >= 0)
      continue;
    *fd = ::open((base + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
      const int err = errno;
      if (err == ENOENT || err == ESRCH || targetGone())
        return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid_) + " exited");
      return Error::make(err == EACCES || err == EPERM ? ErrorCode::PermissionDenied
                                                       : ErrorCode::Io,
                         "cannot open " + base + name + ": " + std::strerror(err));
    }
  }
  zero_pfn_ = sharedZeroPfn();
  zero_pfn_known_ = zero_pfn_ != 0;
  pfn_visible_ = zero_pfn_known_;
  files_opened_ = true;
  return success();
}

Result<std::vector<MemoryCopier::PresentRange>> MemoryCopier::presentRanges(uint64_t start,
                                                                            uint64_t end) {
  if (scan_supported_) {
    auto ranges = presentRangesByScan(start, end);
    if (ranges || ranges.error().code == ErrorCode::ProcessGone)
      return ranges;
    // Unsupported (a kernel before 6.7) or failed: plain pagemap gives the same answer.
  }
  return presentRangesByPagemap(start, end);
}

Result<std::vector<MemoryCopier::PresentRange>> MemoryCopier::presentRangesByScan(uint64_t start,
                                                                                  uint64_t end) {
  using namespace kernel;
  std::vector<page_region> found(kScanVectorLength);
  std::vector<PresentRange> ranges;
  uint64_t cursor = start;
  while (cursor < end) {
    pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.start = cursor;
    arg.end = end;
    arg.vec = reinterpret_cast<uintptr_t>(found.data());
    arg.vec_len = found.size();
    // Any page holding data: present (but see PFNZERO below) or swapped out.
    arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
    arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO;
    const int count = ::ioctl(pagemap_fd_, PAGEMAP_SCAN, &arg);
    if (count < 0) {
      const int err = errno;
      if (err == ENOTTY || err == EINVAL || err == EOPNOTSUPP) {
        scan_supported_ = false; // a kernel before 6.7: read pagemap instead
        return Error::make(ErrorCode::Unsupported, "pagemap_scan is not supported");
      }
      if (err == ESRCH || targetGone())
        return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid_) + " exited");
      return Error::make(ErrorCode::Io, "pagemap_scan failed on 0x" + std::to_string(cursor) +
                                            ": " + std::strerror(err));
    }
    stats_.used_pagemap_scan = true;
    for (int i = 0; i < count; ++i) {
      const page_region& region = found[static_cast<size_t>(i)];
      // The shared zero page holds nothing: an untouched page that was only read.
      if ((region.categories & PAGE_IS_PFNZERO) && !(region.categories & PAGE_IS_SWAPPED))
        continue;
      const uint64_t range_start = std::max(region.start, start);
      const uint64_t range_end = std::min(region.end, end);
      if (range_start >= range_end)
        continue;
      if (!ranges.empty() && ranges.back().end == range_start)
        ranges.back().end = range_end;
      else
        ranges.push_back(PresentRange{range_start, range_end});
    }
    if (arg.walk_end <= cursor) {
      if (count == 0)
        break; // defensive: no progress and nothing found
      cursor = found[static_cast<size_t>(count) - 1].end;
    } else {
      cursor = arg.walk_end;
    }
  }
  return ranges;
}

Result<std::vector<MemoryCopier::PresentRange>> MemoryCopier::presentRangesByPagemap(uint64_t start,
                                                                                     uint64_t end) {
  std::vector<uint64_t> entries;
  std::vector<PresentRange> ranges;
  for (uint64_t cursor = start; cursor < end;) {
    const uint64_t pages = std::min<uint64_t>((end - cursor) / kPageSize, kPagemapBatchEntries);
    entries.resize(pages);
    const size_t want = pages * sizeof(uint64_t);
    const ssize_t got = ::pread(pagemap_fd_, entries.data(), want,
                                static_cast<off_t>(cursor / kPageSize * sizeof(uint64_t)));
    if (got <= 0 || static_cast<size_t>(got) % sizeof(uint64_t) != 0) {
      const int err = got < 0 ? errno : 0;
      if (got == 0 || err == ESRCH || targetGone())
        return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid_) + " exited");
      return Error::make(ErrorCode::Io, "cannot read the pagemap of " + std::to_string(pid_) +
                                            ": " + std::strerror(err));
    }
    const size_t read_entries = static_cast<size_t>(got) / sizeof(uint64_t);
    for (size_t i = 0; i < read_entries; ++i) {
      const uint64_t entry = entries[i];
      bool holds_data = (entry & (kPagemapPresent | kPagemapSwapped)) != 0;
      // As root the PFN shows the shared zero page; without it such pages are read and come
      // out as Zero (reading a page that is already mapped changes nothing in the target).
      if (holds_data && pfn_visible_ && !(entry & kPagemapSwapped) &&
          !(entry & kPagemapFileOrShared) && (entry & kPagemapPfnMask) == zero_pfn_)
        holds_data = false;
      if (!holds_data)
        continue;
      const uint64_t page = cursor + i * kPageSize;
      if (!ranges.empty() && ranges.back().end == page)
        ranges.back().end = page + kPageSize;
      else
        ranges.push_back(PresentRange{page, page + kPageSize});
    }
    cursor += read_entries * kPageSize;
  }
  return ranges;
}

Result<void> MemoryCopier::copyRegion(RegionRecord& region, const ChunkSink& sink) {
  const uint64_t region_start = region.map().start;
  const uint64_t region_end = region.map().end;
  std::vector<PageRun>& runs = region.pages;
  runs.clear();

  // Accounts the finished runs in the stats, whatever way the copy ends.
  auto finish = [&](Result<void> result) -> Result<void> {
    for (const PageRun& run : runs) {
      const uint64_t size = run.end - run.start;
      switch (run.state) {
      case PageState::Stored:
        stats_.bytes_copied += size;
        break;
      case PageState::Zero:
        stats_.bytes_copied += size;
        stats_.bytes_zero += size;
        break;
      case PageState::NotPresent:
        stats_.bytes_not_present += size;
        break;
      case PageState::Unreadable:
        stats_.bytes_unreadable += size;
        break;
      case PageState::Lost:
        stats_.bytes_lost += size;
        break;
      default:
        break;
      }
    }
    return result;
  };
  auto gone = [&](uint64_t from) -> Result<void> {
    appendRun(runs, from, region_end, PageState::Lost);
    return finish(Error::make(ErrorCode::ProcessGone,
                              "process " + std::to_string(pid_) + " exited during the copy"));
  };

  if (region_start >= region_end)
    return success();
  if (region_start % kPageSize != 0 || region_end % kPageSize != 0)
    return Error::make(ErrorCode::InvalidArgument, "region is not page aligned");

  if (auto opened = openFiles(); !opened) {
    if (opened.error().code == ErrorCode::ProcessGone)
      return gone(region_start);
    return opened;
  }
  auto ranges = presentRanges(region_start, region_end);
  if (!ranges) {
    if (ranges.error().code == ErrorCode::ProcessGone)
      return gone(region_start);
    return std::move(ranges).takeError();
  }

  if (!scratch_ && !ranges->empty())
    scratch_ = std::make_unique_for_overwrite<std::byte[]>(kCopyBatchBytes);

  // Cut the present ranges into pieces of at most kChunkSize, in address order.
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const PresentRange& range : *ranges)
    for (uint64_t at = range.start; at < range.end; at += kChunkSize)
      spans.emplace_back(at, std::min<uint64_t>(at + kChunkSize, range.end));

  uint64_t position = region_start; // everything below is in runs
  std::vector<Piece> batch;
  std::vector<iovec> local;
  std::vector<iovec> remote;
  size_t next_span = 0;
  while (next_span < spans.size()) {
    // Gather one batch.
    batch.clear();
    uint64_t batch_bytes = 0;
    while (next_span < spans.size() && batch.size() < kMaxIovecs &&
           batch_bytes + (spans[next_span].second - spans[next_span].first) <= kCopyBatchBytes) {
      Piece piece;
      piece.start = spans[next_span].first;
      piece.end = spans[next_span].second;
      piece.bytes = scratch_.get() + batch_bytes;
      batch_bytes += piece.size();
      batch.push_back(std::move(piece));
      ++next_span;
    }

    // Read it: process_vm_readv over as many pieces as it takes; what it refuses goes
    // through /proc/PID/mem.
    bool target_gone = false;
    uint64_t gone_at = 0;
    size_t index = 0;
    uint64_t offset_in_piece = 0; // of batch[index]
    while (index < batch.size() && !target_gone) {
      local.clear();
      remote.clear();
      for (size_t i = index; i < batch.size(); ++i) {
        const uint64_t skip = i == index ? offset_in_piece : 0;
        local.push_back(iovec{batch[i].bytes + skip, batch[i].size() - skip});
        remote.push_back(
            iovec{reinterpret_cast<void*>(static_cast<uintptr_t>(batch[i].start + skip)),
                  batch[i].size() - skip});
      }
      ++stats_.vm_readv_calls;
      const ssize_t got =
          ::process_vm_readv(pid_, local.data(), local.size(), remote.data(), remote.size(), 0);
      const int err = got < 0 ? errno : 0;
      if (got < 0 && err == ESRCH) {
        target_gone = true;
        gone_at = batch[index].start + offset_in_piece;
        break;
      }
      uint64_t remaining = got > 0 ? static_cast<uint64_t>(got) : 0;
      while (index < batch.size() && remaining >= batch[index].size() - offset_in_piece) {
        remaining -= batch[index].size() - offset_in_piece;
        ++index;
        offset_in_piece = 0;
      }
      if (index >= batch.size())
        break;
      offset_in_piece += remaining;
      // process_vm_readv stops at the first page it cannot read (EFAULT on PROT_NONE, ...):
      // read the rest of this piece through /proc/PID/mem, page by page where that fails.
      Piece& piece = batch[index];
      offset_in_piece -= offset_in_piece % kPageSize;
      piece.page_states.assign(piece.size() / kPageSize, PageState::Stored);
      uint64_t at = offset_in_piece;
      while (at < piece.size()) {
        const ssize_t read = ::pread(mem_fd_, piece.bytes + at, piece.size() - at,
                                     static_cast<off_t>(piece.start + at));
        if (read > 0) {
          stats_.mem_fallback_bytes += static_cast<uint64_t>(read);
          at += static_cast<uint64_t>(read);
          continue;
        }
        const int read_err = read < 0 ? errno : 0;
        if (read < 0 && read_err == EINTR)
          continue;
        if (read == 0 || read_err == ESRCH || targetGone()) {
          target_gone = true;
          gone_at = piece.start + at;
          break;
        }
        piece.page_states[at / kPageSize] = PageState::Unreadable;
        at = (at / kPageSize + 1) * kPageSize;
      }
      ++index;
      offset_in_piece = 0;
    }

    // Emit the batch in address order: gaps are NotPresent, pages are Stored or Zero.
    for (Piece& piece : batch) {
      if (target_gone && piece.start >= gone_at)
        break;
      appendRun(runs, position, piece.start, PageState::NotPresent);
      const uint64_t piece_end =
          target_gone ? std::min(piece.end, gone_at - gone_at % kPageSize) : piece.end;
      const size_t pages = (piece_end - piece.start) / kPageSize;
      // Decide every page, then send each run of stored pages as one chunk.
      size_t page = 0;
      bool whole_piece_stored = piece_end == piece.end;
      std::vector<PageState> states(pages);
      for (size_t i = 0; i < pages; ++i) {
        if (!piece.page_states.empty() && piece.page_states[i] != PageState::Stored)
          states[i] = piece.page_states[i];
        else
          states[i] = pageIsZero(piece.bytes + i * kPageSize) ? PageState::Zero : PageState::Stored;
        if (states[i] != PageState::Stored)
          whole_piece_stored = false;
      }
      if (whole_piece_stored && pages > 0) {
        appendRun(runs, piece.start, piece.end, PageState::Stored);
        position = piece.end;
        CopiedChunk chunk;
        chunk.address = piece.start;
        chunk.bytes.assign(piece.bytes, piece.bytes + piece.size());
        if (auto sent = sink(std::move(chunk)); !sent) {
          appendRun(runs, position, region_end, PageState::Lost);
          return finish(std::move(sent).takeError());
        }
        continue;
      }
      while (page < pages) {
        size_t run_end = page + 1;
        while (run_end < pages && states[run_end] == states[page])
          ++run_end;
        const uint64_t run_start_address = piece.start + page * kPageSize;
        const uint64_t run_end_address = piece.start + run_end * kPageSize;
        appendRun(runs, run_start_address, run_end_address, states[page]);
        position = run_end_address;
        if (states[page] == PageState::Stored) {
          CopiedChunk chunk;
          chunk.address = run_start_address;
          chunk.bytes.assign(piece.bytes + page * kPageSize, piece.bytes + run_end * kPageSize);
          if (auto sent = sink(std::move(chunk)); !sent) {
            appendRun(runs, position, region_end, PageState::Lost);
            return finish(std::move(sent).takeError());
          }
        }
        page = run_end;
      }
      position = std::max(position, piece_end);
    }
    if (target_gone)
      return gone(std::max(position, region_start));
  }
  appendRun(runs, position, region_end, PageState::NotPresent);
  return finish(success());
}

} // namespace procsnap
