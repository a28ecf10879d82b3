// Turns the pages of one region, fed in address order, into its page runs and its chunks.
//
// The rule for all-zero pages: a run of fewer than kMinZeroRunPages zero pages between two
// stored pages stays inside the chunk and is recorded as Stored; a longer run, or one at
// the edge of the stored data (next to a not-present, unreadable or lost page, or the
// region's start or end), is recorded as Zero and ends the chunk. Ending a chunk at every
// zero page fragmented typical heaps (one zero page in four gave ~12 KiB chunks, and zstd
// compresses such small frames far worse: ratio 1.58 instead of ~2.4 on 1.1 GiB).
#pragma once

#include "capture/memory_copier.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace procsnap {

inline constexpr uint64_t kAssemblerPageSize = 4096;

// Zero runs shorter than this (64 KiB) are kept inside a chunk: they compress to a few
// bytes, while cutting the chunk there costs a frame header and, worse, a zstd window that
// restarts with no history. 64 KiB of zeros are worth a chunk boundary.
inline constexpr uint64_t kMinZeroRunPages = 16;

class ChunkAssembler final {
public:
  // Appends to runs (which must end at start, or be empty with start the region's start)
  // and hands chunks to sink, each page aligned, contiguous and at most kChunkSize.
  ChunkAssembler(std::vector<PageRun>& runs, const ChunkSink& sink, uint64_t start);
  ChunkAssembler(const ChunkAssembler&) = delete;
  ChunkAssembler& operator=(const ChunkAssembler&) = delete;

  // The next page, read: kAssemblerPageSize bytes at bytes, which must stay valid until
  // releaseBuffers() or the chunk holding the page is sent.
  Result<void> addReadPage(const std::byte* bytes);
  // The next [position(), end) in a state that holds no bytes (NotPresent, Unreadable, Lost,
  // ...).
  Result<void> addRange(uint64_t end, PageState state);
  // Copies the bytes of the chunk being built out of the caller's buffers, which may then
  // be reused.
  void releaseBuffers();
  // Decides the pending zero pages and sends the last chunk. Call once, at the region's end.
  Result<void> finish();

  // After a sink error: the pages of the refused chunk and everything after it up to
  // region_end become Lost (the runs recorded them as stored before the chunk was sent).
  void markLostAfterSinkError(uint64_t region_end);

  uint64_t position() const { return position_; }

private:
  struct Segment {
    const std::byte* bytes = nullptr; // nullptr: zeros
    uint64_t size = 0;
  };

  void appendToChunk(const std::byte* bytes, uint64_t size);
  // Records [decided_end_, decided_end_ + size) as Stored with these bytes (nullptr: zeros).
  Result<void> store(const std::byte* bytes, uint64_t size);
  Result<void> sendChunk();
  // The pending zero pages are not between two stored pages: record them as Zero.
  Result<void> settlePendingZerosAsZero();

  std::vector<PageRun>& runs_;
  const ChunkSink& sink_;
  uint64_t position_;                 // end of the pages fed so far
  uint64_t decided_end_;              // end of runs_; [decided_end_, position_) are zero pages
  bool previous_stored_ = false;      // the page before decided_end_ was stored
  bool zero_run_committed_ = false;   // the current zero run is long: recorded as Zero
  uint64_t failed_chunk_address_ = 0; // the chunk the sink refused
  uint64_t chunk_address_ = 0;
  uint64_t chunk_size_ = 0;
  std::vector<Segment> segments_;   // the chunk being built
  std::vector<std::byte> retained_; // segment bytes copied out by releaseBuffers()
};

} // namespace procsnap
