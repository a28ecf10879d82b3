#include "capture/memory_copier.h"

#include "capture/chunk_assembler.h"
#include "capture/pagemap_scan.h"
#include "capture/process_inspector.h"
#include "common/proc/files.h"
#include "common/proc/status.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <optional>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

// Where a piece's bytes come from.
enum class PieceSource : uint8_t {
  Memory,        // present in the target: process_vm_readv, else /proc/PID/mem
  File,          // not present, in a file-backed mapping: the mapped file
  BeyondFileEnd, // not present, past the mapped file's end: nothing (the target gets SIGBUS)
};

// A page-aligned part of a region, at most kChunkSize (except BeyondFileEnd), read in one
// piece.
struct Piece {
  uint64_t start = 0;
  uint64_t end = 0;
  PieceSource source = PieceSource::Memory;
  std::byte* bytes = nullptr; // in the copier's scratch buffer; nullptr for BeyondFileEnd
  // Per-page outcome when a fallback read was needed; empty when every page was read.
  std::vector<PageState> page_states;
  uint64_t size() const { return end - start; }
  void markPage(uint64_t offset, PageState state) {
    if (page_states.empty())
      page_states.assign(size() / kPageSize, PageState::Stored);
    page_states[offset / kPageSize] = state;
  }
};

// Shared memory that merely looks file-backed in maps: its not-present pages are untouched
// shmem (or belong to other processes), not file contents worth reading.
bool isShmemLike(const MapsEntry& map) {
  return map.path.starts_with("/memfd:") || map.path.starts_with("/SYSV") ||
         map.path == "/dev/zero";
}

// Whether the not-present pages of region are read from its file: a readable mapping of a
// file (not anonymous, not shmem, not hugetlbfs).
bool readsMissingPagesFromFile(const RegionRecord& region) {
  const MapsEntry& map = region.map();
  return map.inode != 0 && !map.isAnonymous() && !map.path.empty() && map.path.front() == '/' &&
         !isShmemLike(map) && region.kind != RegionKind::SharedAnon &&
         !region.smaps.hasVmFlag("ht") && (map.perms.read || map.perms.execute);
}

// The file behind a file-backed region, open for reading its not-present pages.
class BackingFile final {
public:
  BackingFile() = default;
  ~BackingFile() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  BackingFile(const BackingFile&) = delete;
  BackingFile& operator=(const BackingFile&) = delete;

  // Through /proc/PID/map_files/START-END (the very file mapped, even deleted or replaced on
  // disk; needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), else through the path when its
  // device and inode are the mapping's. Returns false with problem() set when neither works,
  // false with problem() empty when the file is not a regular file (a device: never read).
  bool open(pid_t pid, const MapsEntry& map) {
    char map_files[96];
    std::snprintf(map_files, sizeof map_files, "/proc/%d/map_files/%llx-%llx",
                  static_cast<int>(pid), static_cast<unsigned long long>(map.start),
                  static_cast<unsigned long long>(map.end));
    // O_NONBLOCK: never block on a FIFO or device that turns out to be mapped.
    constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    fd_ = ::open(map_files, kFlags);
    const int map_files_errno = errno;
    struct stat st {};
    if (fd_ >= 0) {
      if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
      size_ = static_cast<uint64_t>(st.st_size);
      return true;
    }
    const std::string why_not = std::string(map_files) + ": " + std::strerror(map_files_errno);
    if (map.deleted) {
      problem_ = "not-present pages not read: cannot open " + why_not + " and the file is deleted";
      return false;
    }
    fd_ = ::open(map.path.c_str(), kFlags);
    if (fd_ < 0) {
      problem_ = "not-present pages not read: cannot open " + why_not + " nor " + map.path + ": " +
                 std::strerror(errno);
      return false;
    }
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode))
      return false;
    if (st.st_ino != map.inode || major(st.st_dev) != map.dev_major ||
        minor(st.st_dev) != map.dev_minor) {
      problem_ = "not-present pages not read: " + map.path +
                 " is no longer the mapped file (device or inode differs) and " + why_not;
      return false;
    }
    size_ = static_cast<uint64_t>(st.st_size);
    return true;
  }

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  const std::string& problem() const { return problem_; }

private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string problem_;
};

void addNote(RegionRecord& region, const std::string& note) {
  region.note += region.note.empty() ? note : "; " + note;
}

// Reads the Memory pieces from the target: process_vm_readv over as many pieces as it takes;
// what it refuses goes through /proc/PID/mem, page by page where that fails too. Returns the
// address where the target was found gone, or nullopt when it was not.
std::optional<uint64_t> readFromTarget(pid_t pid, int mem_fd, const std::vector<Piece*>& pieces,
                                       bool mem_only, CopyStats& stats) {
  std::vector<iovec> local;
  std::vector<iovec> remote;
  size_t index = 0;
  uint64_t offset_in_piece = 0; // of pieces[index]
  while (index < pieces.size()) {
    local.clear();
    remote.clear();
    for (size_t i = index; i < pieces.size(); ++i) {
      const uint64_t skip = i == index ? offset_in_piece : 0;
      local.push_back(iovec{pieces[i]->bytes + skip, pieces[i]->size() - skip});
      remote.push_back(
          iovec{reinterpret_cast<void*>(static_cast<uintptr_t>(pieces[i]->start + skip)),
                pieces[i]->size() - skip});
    }
    // mem_only: every piece goes through the /proc/PID/mem loop below.
    if (!mem_only)
      ++stats.vm_readv_calls;
    const ssize_t got = mem_only ? 0
                                 : ::process_vm_readv(pid, local.data(), local.size(),
                                                      remote.data(), remote.size(), 0);
    if (got < 0 && errno == ESRCH)
      return pieces[index]->start + offset_in_piece;
    uint64_t remaining = got > 0 ? static_cast<uint64_t>(got) : 0;
    while (index < pieces.size() && remaining >= pieces[index]->size() - offset_in_piece) {
      remaining -= pieces[index]->size() - offset_in_piece;
      ++index;
      offset_in_piece = 0;
    }
    if (index >= pieces.size())
      break;
    offset_in_piece += remaining;
    // process_vm_readv stops at the first page it cannot read (EFAULT on PROT_NONE, ...):
    // read the rest of this piece through /proc/PID/mem, page by page where that fails.
    Piece& piece = *pieces[index];
    uint64_t at = offset_in_piece - offset_in_piece % kPageSize;
    while (at < piece.size()) {
      const ssize_t read = ::pread(mem_fd, piece.bytes + at, piece.size() - at,
                                   static_cast<off_t>(piece.start + at));
      if (read > 0) {
        stats.mem_fallback_bytes += static_cast<uint64_t>(read);
        at += static_cast<uint64_t>(read);
        continue;
      }
      const int read_err = read < 0 ? errno : 0;
      if (read < 0 && read_err == EINTR)
        continue;
      if (read == 0 || read_err == ESRCH || processExited(pid))
        return piece.start + at;
      piece.markPage(at, PageState::Unreadable);
      at = (at / kPageSize + 1) * kPageSize;
    }
    ++index;
    offset_in_piece = 0;
  }
  return std::nullopt;
}

// Reads a File piece from the mapped file at the mapping's offset. A page the file ends in
// gets zeros after the end (as the kernel fills it); whole pages past the end (the file
// shrank since it was measured) and pages the read fails on are Unreadable.
void readFromFile(const BackingFile& file, const MapsEntry& map, Piece& piece, CopyStats& stats) {
  const uint64_t file_offset = map.offset + (piece.start - map.start);
  uint64_t at = 0;
  while (at < piece.size()) {
    const ssize_t read = ::pread(file.fd(), piece.bytes + at, piece.size() - at,
                                 static_cast<off_t>(file_offset + at));
    if (read > 0) {
      stats.bytes_from_file += static_cast<uint64_t>(read);
      at += static_cast<uint64_t>(read);
      continue;
    }
    if (read < 0 && errno == EINTR)
      continue;
    if (read == 0) {
      const uint64_t page_end = (at + kPageSize - 1) / kPageSize * kPageSize;
      std::memset(piece.bytes + at, 0, page_end - at);
      for (uint64_t page = page_end; page < piece.size(); page += kPageSize)
        piece.markPage(page, PageState::Unreadable);
      return;
    }
    piece.markPage(at, PageState::Unreadable); // an I/O error on this page
    at = (at / kPageSize + 1) * kPageSize;
  }
}

} // namespace

MemoryCopier::MemoryCopier(pid_t pid, bool allow_pagemap_scan, TargetRead target_read)
    : pid_(pid), mem_only_(target_read == TargetRead::ProcMem),
      scan_supported_(allow_pagemap_scan) {}

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
  const MapsEntry& map = region.map();
  const uint64_t region_start = map.start;
  const uint64_t region_end = map.end;
  std::vector<PageRun>& runs = region.pages;
  runs.clear();
  ChunkAssembler assembler(runs, sink, region_start);

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
  auto sinkFailed = [&](Error error) -> Result<void> {
    assembler.markLostAfterSinkError(region_end);
    return finish(std::move(error));
  };
  // The target died: what was not handed on yet is Lost.
  auto gone = [&]() -> Result<void> {
    if (auto ended = assembler.addRange(region_end, PageState::Lost); !ended)
      return sinkFailed(std::move(ended).takeError());
    return finish(Error::make(ErrorCode::ProcessGone,
                              "process " + std::to_string(pid_) + " exited during the copy"));
  };

  if (region_start >= region_end)
    return success();
  if (region_start % kPageSize != 0 || region_end % kPageSize != 0)
    return Error::make(ErrorCode::InvalidArgument, "region is not page aligned");

  if (auto opened = openFiles(); !opened) {
    if (opened.error().code == ErrorCode::ProcessGone)
      return gone();
    return opened;
  }
  auto ranges = presentRanges(region_start, region_end);
  if (!ranges) {
    if (ranges.error().code == ErrorCode::ProcessGone)
      return gone();
    return std::move(ranges).takeError();
  }
  // The [vdso]'s pages are the kernel's, shared by every process: reading one the target has
  // not touched maps it without allocating anything, and debuggers need the whole image
  // (its string table lies in a page a process rarely touches).
  if (map.path == "[vdso]")
    *ranges = {PresentRange{region_start, region_end}};

  // The mapped file, opened once per region, when the target has not faulted in all of it.
  uint64_t present_bytes = 0;
  for (const PresentRange& range : *ranges)
    present_bytes += range.end - range.start;
  BackingFile file;
  bool use_file = false;
  uint64_t file_data_end = region_start; // pages from here on are past the file's end
  if (present_bytes < region_end - region_start && readsMissingPagesFromFile(region)) {
    use_file = file.open(pid_, map);
    if (!use_file && !file.problem().empty())
      addNote(region, file.problem());
    if (use_file && file.size() > map.offset) {
      const uint64_t file_bytes = file.size() - map.offset;
      file_data_end = file_bytes >= region_end - region_start
                          ? region_end
                          : region_start + (file_bytes + kPageSize - 1) / kPageSize * kPageSize;
    }
  }

  // The pieces to read, in address order: present ranges from the target, the gaps between
  // them from the file (or not at all), each cut to at most kChunkSize.
  std::vector<Piece> pieces;
  auto addPieces = [&](uint64_t from, uint64_t to, PieceSource source) {
    const uint64_t step = source == PieceSource::BeyondFileEnd ? to - from : kChunkSize;
    for (uint64_t at = from; at < to; at += step)
      pieces.push_back(Piece{at, std::min(to, at + step), source, nullptr, {}});
  };
  uint64_t beyond_file_end = 0;
  auto addGap = [&](uint64_t from, uint64_t to) {
    if (!use_file)
      return; // NotPresent
    addPieces(from, std::min(to, std::max(from, file_data_end)), PieceSource::File);
    addPieces(std::max(from, file_data_end), to, PieceSource::BeyondFileEnd);
    if (to > std::max(from, file_data_end))
      beyond_file_end += to - std::max(from, file_data_end);
  };
  uint64_t cursor = region_start;
  for (const PresentRange& range : *ranges) {
    addGap(cursor, range.start);
    addPieces(range.start, range.end, PieceSource::Memory);
    cursor = range.end;
  }
  addGap(cursor, region_end);
  if (beyond_file_end != 0)
    addNote(region, std::to_string(beyond_file_end) +
                        " bytes past the end of the mapped file are unreadable (the target "
                        "would get SIGBUS)");

  std::vector<Piece*> from_target;
  size_t next = 0;
  while (next < pieces.size()) {
    // Gather one batch: at most kCopyBatchBytes to read, at most kMaxIovecs pieces.
    const size_t first = next;
    uint64_t batch_bytes = 0;
    from_target.clear();
    while (next < pieces.size() && next - first < kMaxIovecs) {
      Piece& piece = pieces[next];
      if (piece.source != PieceSource::BeyondFileEnd) {
        if (batch_bytes + piece.size() > kCopyBatchBytes)
          break;
        if (!scratch_)
          scratch_ = std::make_unique_for_overwrite<std::byte[]>(kCopyBatchBytes);
        piece.bytes = scratch_.get() + batch_bytes;
        batch_bytes += piece.size();
        if (piece.source == PieceSource::Memory)
          from_target.push_back(&piece);
      }
      ++next;
    }

    const std::optional<uint64_t> gone_at =
        readFromTarget(pid_, mem_fd_, from_target, mem_only_, stats_);
    for (size_t i = first; i < next; ++i)
      if (pieces[i].source == PieceSource::File && (!gone_at || pieces[i].start < *gone_at))
        readFromFile(file, map, pieces[i], stats_);

    // Hand the batch on in address order; gaps between pieces are NotPresent.
    for (size_t i = first; i < next; ++i) {
      const Piece& piece = pieces[i];
      if (gone_at && piece.start >= *gone_at)
        break;
      if (auto added = assembler.addRange(piece.start, PageState::NotPresent); !added)
        return sinkFailed(std::move(added).takeError());
      const uint64_t piece_end =
          gone_at ? std::min(piece.end, *gone_at - *gone_at % kPageSize) : piece.end;
      if (piece.source == PieceSource::BeyondFileEnd) {
        if (auto added = assembler.addRange(piece_end, PageState::Unreadable); !added)
          return sinkFailed(std::move(added).takeError());
        continue;
      }
      for (uint64_t offset = 0; piece.start + offset < piece_end; offset += kPageSize) {
        const PageState state =
            piece.page_states.empty() ? PageState::Stored : piece.page_states[offset / kPageSize];
        auto added = state == PageState::Stored
                         ? assembler.addReadPage(piece.bytes + offset)
                         : assembler.addRange(piece.start + offset + kPageSize, state);
        if (!added)
          return sinkFailed(std::move(added).takeError());
      }
    }
    assembler.releaseBuffers(); // the next batch reuses the scratch buffer
    if (gone_at)
      return gone();
  }
  if (auto ended = assembler.addRange(region_end, PageState::NotPresent); !ended)
    return sinkFailed(std::move(ended).takeError());
  if (auto finished = assembler.finish(); !finished)
    return sinkFailed(std::move(finished).takeError());
  return finish(success());
}

} // namespace procsnap
