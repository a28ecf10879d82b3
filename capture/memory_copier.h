// Copying a frozen target's memory, region by region, without disturbing it: pages pagemap
// says are absent are never read from the target (reading untouched memory would map the
// zero page into the TARGET, TECH-NOTES §7), and zero-page-backed pages count as not present.
// In a file-backed mapping, the pages the target has not faulted in are read from the mapped
// file itself (/proc/PID/map_files, which leaves the target's page tables alone), so module
// text and untouched file mappings are in the archive. Long runs of all-zero pages are
// recorded as Zero instead of stored; short ones stay inside their chunk (chunk_assembler.h).
#pragma once

#include "common/archive/writer.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <sys/types.h>
#include <vector>

namespace procsnap {

// Bytes read per batch into the copier's scratch buffer before they are cut into chunks: few
// syscalls, and a buffer that stays warm instead of faulting in fresh memory per chunk.
inline constexpr uint64_t kCopyBatchBytes = 32u << 20;

// Page aligned, contiguous, at most kChunkSize bytes. Its zero pages, if any, belong to runs
// of fewer than kMinZeroRunPages (chunk_assembler.h) between two non-zero pages.
struct CopiedChunk {
  uint64_t address = 0;
  std::vector<std::byte> bytes;
};

using ChunkSink = std::function<Result<void>(CopiedChunk&&)>;

struct CopyStats {
  uint64_t bytes_copied = 0;    // read from the target or its mapped files (stored + zero)
  uint64_t bytes_from_file = 0; // read from mapped files: pages the target had not faulted in
  uint64_t bytes_zero = 0;
  uint64_t bytes_not_present = 0;
  uint64_t bytes_unreadable = 0;
  uint64_t bytes_lost = 0;
  uint64_t vm_readv_calls = 0;
  uint64_t mem_fallback_bytes = 0; // read through /proc/PID/mem
  bool used_pagemap_scan = false;
};

// How present pages are read. ProcMem is for a copy-on-write fork: process_vm_readv pins the
// pages it reads, and pinning an anonymous page shared with the fork unshares it, so the fork
// gains a private copy of every page read (a --cow capture of a 50 GiB process cost the host
// another 50 GiB). pread of /proc/PID/mem reads without pinning: the pages stay shared.
enum class TargetRead { VmReadv, ProcMem };

class MemoryCopier final {
public:
  // Opens /proc/PID/pagemap and /proc/PID/mem lazily. allow_pagemap_scan = false reads
  // pagemap entries instead of using PAGEMAP_SCAN (for comparison and benchmarks).
  explicit MemoryCopier(pid_t pid, bool allow_pagemap_scan = true,
                        TargetRead target_read = TargetRead::VmReadv);
  ~MemoryCopier();
  MemoryCopier(const MemoryCopier&) = delete;
  MemoryCopier& operator=(const MemoryCopier&) = delete;

  // Fills region.pages so that it covers [start, end) exactly with runs of Stored / Zero /
  // NotPresent / Unreadable / Lost, and hands every run of stored bytes to sink in address
  // order, in pieces of at most kChunkSize. Not-present pages of a readable file-backed
  // mapping are read from the file (pages past its end are Unreadable: the target would get
  // SIGBUS); when the file cannot be opened they stay NotPresent and region.note says why.
  // If the target dies, the rest is Lost and the result is ErrorCode::ProcessGone
  // (region.pages still complete). A sink error stops the copy and is returned
  // (region.pages then covers the refused chunk and the rest as Lost).
  Result<void> copyRegion(RegionRecord& region, const ChunkSink& sink);

  const CopyStats& stats() const { return stats_; }

private:
  struct PresentRange {
    uint64_t start = 0;
    uint64_t end = 0;
  };

  Result<void> openFiles();
  // Present, non-zero-page-backed ranges in [start, end), sorted and merged.
  Result<std::vector<PresentRange>> presentRanges(uint64_t start, uint64_t end);
  Result<std::vector<PresentRange>> presentRangesByScan(uint64_t start, uint64_t end);
  Result<std::vector<PresentRange>> presentRangesByPagemap(uint64_t start, uint64_t end);
  bool targetGone() const;

  pid_t pid_;
  bool mem_only_ = false; // TargetRead::ProcMem
  int pagemap_fd_ = -1;
  int mem_fd_ = -1;
  bool files_opened_ = false;
  bool scan_supported_ = true; // cleared when PAGEMAP_SCAN fails with ENOTTY/EINVAL
  bool pfn_visible_ = false;   // pagemap shows PFNs (CAP_SYS_ADMIN): the zero page is known
  uint64_t zero_pfn_ = 0;      // PFN of the shared zero page, when pfn_visible_ and found
  bool zero_pfn_known_ = false;
  CopyStats stats_;
  std::unique_ptr<std::byte[]> scratch_; // kCopyBatchBytes, allocated on first use
};

} // namespace procsnap
