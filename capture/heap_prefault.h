// Pre-faults the capturer's own heap before the target is frozen. First-touching fresh memory
// is slow on this kind of VM (0.9-3.3 GB/s, TECH-NOTES §7), and every copied page lands in a
// freshly allocated buffer: without this, page faults in the capturer were most of the
// target's pause. The trick: keep glibc malloc from using mmap for chunk-sized blocks and from
// returning freed memory to the kernel, then allocate, touch and free the expected amount, so
// the copy's allocations reuse pages that are already mapped.
#pragma once

#include <cstdint>

namespace procsnap {

// Touches up to bytes of heap (in kChunkSize blocks) and leaves them free for reuse by the
// calling thread's arena. Returns the bytes actually pre-faulted (0 when allocation fails).
uint64_t prefaultHeap(uint64_t bytes);

} // namespace procsnap
