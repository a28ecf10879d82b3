// Which pages of a running target it writes over a span of time (capture --precopy), so that
// its memory can be copied while it runs and only what changed is copied again while it is
// frozen. userfaultfd write-protection in asynchronous mode (Linux 6.7,
// UFFD_FEATURE_WP_ASYNC) does the tracking: PAGEMAP_SCAN write-protects every page of the
// registered ranges; a write by the target (or by the kernel on its behalf) then just clears
// the protection of that page, without blocking the writer, and PAGEMAP_SCAN's
// PAGE_IS_WRITTEN lists the pages whose protection is gone. A page that is unmapped
// (MADV_DONTNEED, munmap and remap) also counts as written.
//
// The userfaultfd must belong to the target's memory, so one of its threads creates it (an
// injected system call, capture/syscall_injection.h); we take it with pidfd_getfd and close
// the target's descriptor at once. From then on only we hold it: when we close it or die, the
// kernel unregisters everything and the target is as before. Write-protecting and removing
// the registrations walk the target's page tables (150-300 ms per GiB here, while it runs):
// one call per mapping stalled a thread of the target for the whole walk, so they go by
// 2 MiB pieces with a pause between (stalls of 0-57 ms measured for 1 GiB).
//
// What it cannot see: writes that bypass the page tables, i.e. DMA into pinned pages
// (O_DIRECT reads or RDMA in flight). Shared mappings are not tracked: other processes write
// them. Both are why --precopy is an option.
#pragma once

#include "capture/frozen_process.h"
#include "capture/syscall_injection.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace procsnap {

struct AddressRange {
  uint64_t start = 0;
  uint64_t end = 0;
};

class WriteTracker final {
public:
  // Creates the userfaultfd in the frozen target (one injected userfaultfd() and one close()
  // in an interrupt-stopped thread) and registers every private region of `regions` that the
  // kernel accepts. Unsupported when the kernel lacks asynchronous write-protection.
  static Result<std::unique_ptr<WriteTracker>> create(FrozenProcess& frozen,
                                                      const SyscallGadget& gadget,
                                                      const std::vector<RegionRecord>& regions);

  ~WriteTracker(); // unregisters and closes (the kernel would do both if we died)
  WriteTracker(const WriteTracker&) = delete;
  WriteTracker& operator=(const WriteTracker&) = delete;

  // Write-protects every tracked page: from now on a write marks its page written. Call with
  // the target running or frozen, before copying.
  Result<void> arm();

  // Whether the mapping is tracked whole (it was registered, as this exact range).
  bool tracks(const MapsEntry& map) const;
  uint64_t trackedBytes() const;

  // The pages of [start, end) written (or unmapped) since arm(), as sorted, merged ranges.
  Result<std::vector<AddressRange>> writtenRanges(uint64_t start, uint64_t end);

private:
  WriteTracker() = default;

  pid_t pid_ = 0;
  int uffd_ = -1;
  int pagemap_fd_ = -1;
  std::vector<MapsEntry> tracked_; // registered mappings, sorted by address
};

} // namespace procsnap
