#include "capture/heap_prefault.h"

#include "common/archive/writer.h"

#include <cstdint>
#include <cstdlib>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace procsnap {
namespace {

// glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): blocks below it come
// from the arena, so the pre-faulted pages are the ones reused.
constexpr int kMmapThreshold = 32 << 20;

// MADV_POPULATE_WRITE (Linux 5.14), missing from Debian 12's libc headers.
constexpr int kMadvPopulateWrite = 23;

} // namespace

uint64_t prefaultHeap(uint64_t bytes) {
  if (bytes == 0)
    return 0;
  // Keep freed memory in the arena instead of trimming it back to the kernel.
  ::mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  ::mallopt(M_TRIM_THRESHOLD, -1);
  const long page = ::sysconf(_SC_PAGESIZE) > 0 ? ::sysconf(_SC_PAGESIZE) : 4096;
  std::vector<void*> blocks;
  blocks.reserve(static_cast<size_t>(bytes / kChunkSize + 1));
  uint64_t done = 0;
  while (done < bytes) {
    void* block = std::malloc(kChunkSize);
    if (block == nullptr)
      break; // what was touched still helps
    // MADV_POPULATE_WRITE faults the range in one system call, far cheaper than one page
    // fault per page on a VM; touching each page is the fallback (kernels before 5.14).
    const uintptr_t start = (reinterpret_cast<uintptr_t>(block) + page - 1) & ~uintptr_t(page - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(block) + kChunkSize) & ~uintptr_t(page - 1);
    if (end <= start ||
        ::madvise(reinterpret_cast<void*>(start), end - start, kMadvPopulateWrite) != 0) {
      auto* bytes_of = static_cast<volatile char*>(block);
      for (uint32_t offset = 0; offset < kChunkSize; offset += static_cast<uint32_t>(page))
        bytes_of[offset] = 0;
    }
    blocks.push_back(block);
    done += kChunkSize;
  }
  for (void* block : blocks)
    std::free(block);
  return done;
}

} // namespace procsnap
