// Compares the bytes of two matched regions. Where both snapshots stored a stretch in chunks
// that line up (the same offsets and sizes) and record comparable digests, equal digests mean
// equal bytes and nothing is decompressed; only chunks whose digests differ, and stretches
// whose chunks do not line up, are read, in pieces of kCompareBlockBytes, so memory stays
// bounded whatever the region's size. Unstored bytes read as zeros, as everywhere in analyze/.
#pragma once

#include "analyze/engines/region_matcher.h"
#include "analyze/model/address_space.h"
#include "analyze/model/snapshot.h"

#include <llvm/Support/Error.h>

#include <cstdint>
#include <vector>

namespace procsnap::analyze {

// Bytes compared at a time on each side when digests cannot decide: about one chunk.
inline constexpr uint64_t kCompareBlockBytes = uint64_t{1} << 20;

struct ContentDiff {
  // Bytes stored on at least one side and known on both (zeros on both sides cost nothing
  // and are not counted).
  uint64_t bytes_compared = 0;
  uint64_t bytes_changed = 0;
  uint64_t pages_changed = 0;
  // Bytes not comparable: one side excluded, unreadable, lost or redacted them.
  uint64_t bytes_not_compared = 0;
  uint64_t chunks_equal_by_digest = 0;     // pairs skipped without decompressing
  uint64_t chunks_different_by_digest = 0; // pairs whose digests differ (then read)
  uint64_t bytes_read = 0;                 // compared by reading (both sides counted once)
  // Changed pages, merged, at base addresses (the new ones are these plus the pair's delta).
  std::vector<AddressRange> changed_ranges;
};

// Compares the overlap of base region pair.base_index and new region pair.new_index (at base
// address A and new address A + pair.delta). Errors: a source cannot be read (damage).
llvm::Expected<ContentDiff> compareRegionContents(const Snapshot& base, const Snapshot& next,
                                                  const RegionPair& pair);

} // namespace procsnap::analyze
