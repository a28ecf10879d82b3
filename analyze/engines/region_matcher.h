// Pairs the regions of two snapshots: first by address (overlapping regions of the same
// identity are the same mapping, grown, shrunk or re-protected), then, for what is left, by
// identity alone (a file at the same offset, a named pseudo-region such as [heap], a module's
// .bss), so two processes with different layouts still compare what is comparable.
#pragma once

#include "common/model/snapshot_metadata.h"

#include <cstdint>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct RegionPair {
  int base_index = -1; // into the base's metadata().regions; -1: the region was added
  int new_index = -1;  // into the new snapshot's regions; -1: the region was removed
  // The new address of base address A is A + delta: 0 when matched by address, the
  // difference of the starts when matched by identity elsewhere.
  int64_t delta = 0;
  bool by_address = true;

  bool matched() const { return base_index >= 0 && new_index >= 0; }
};

// What a region is, independent of where it lies: "file:PATH@0xOFFSET" (offset of the
// region's start), "[heap]", "bss:PATH" (the anonymous .bss after PATH's mapping) or
// "anon:KIND".
std::string regionIdentity(const std::vector<RegionRecord>& regions, size_t index);

// Every region of both lists appears in exactly one pair. Pairs are in address order (new
// address, or base address for removed regions).
std::vector<RegionPair> matchRegions(const std::vector<RegionRecord>& base,
                                     const std::vector<RegionRecord>& next);

} // namespace procsnap::analyze
