// The frozen half of capture --precopy: a region copied while the target ran is brought up to
// date by copying again only what was written since (write_tracker.h). Each written range is
// widened to the whole chunks it touches; those chunks are dropped and their span copied
// again, and the region's page runs over that span are replaced by the new ones. Pages that
// were not stored (zero, not present) and are now written become a span of their own.
#pragma once

#include "capture/chunk_buffer.h"
#include "capture/memory_copier.h"
#include "capture/write_tracker.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstdint>
#include <vector>

namespace procsnap {

// The spans to copy again: each written range widened to whole chunks of `chunks` (sorted by
// address, disjoint), merged.
std::vector<AddressRange> widenToChunks(const std::vector<AddressRange>& written,
                                        const std::vector<AddressRange>& chunks);

// Replaces the runs of `runs` (sorted, covering a region) over [fresh.front().start,
// fresh.back().end) with `fresh`, merging neighbours in the same state.
void spliceRuns(std::vector<PageRun>& runs, const std::vector<PageRun>& fresh);

// Brings region (its pages and its chunks in buffer) up to date with the target's memory now:
// the written ranges are widened, their chunks discarded and copied again through sink.
// Returns the bytes read again (pages now holding data in those spans). ProcessGone as copyRegion
// (the rest of a span is Lost).
Result<uint64_t> refreshWrittenPages(RegionRecord& region, const std::vector<AddressRange>& written,
                                     ChunkBuffer& buffer, MemoryCopier& copier,
                                     const ChunkSink& sink);

} // namespace procsnap
