#include "capture/chunk_assembler.h"

#include <algorithm>
#include <cstring>

namespace procsnap {

namespace {

constexpr uint64_t kPageSize = kAssemblerPageSize;
static_assert(kChunkSize % kPageSize == 0);

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

} // namespace

ChunkAssembler::ChunkAssembler(std::vector<PageRun>& runs, const ChunkSink& sink, uint64_t start)
    : runs_(runs), sink_(sink), position_(start), decided_end_(start) {}

Result<void> ChunkAssembler::addReadPage(const std::byte* bytes) {
  if (pageIsZero(bytes)) {
    position_ += kPageSize;
    if (zero_run_committed_) {
      appendRun(runs_, decided_end_, position_, PageState::Zero);
      decided_end_ = position_;
    } else if ((position_ - decided_end_) / kPageSize >= kMinZeroRunPages) {
      PROCSNAP_TRY(settlePendingZerosAsZero());
      zero_run_committed_ = true;
    }
    return success();
  }
  zero_run_committed_ = false;
  if (decided_end_ < position_) {
    // A short zero run: kept in the chunk when stored data is on both sides of it.
    if (previous_stored_)
      PROCSNAP_TRY(store(nullptr, position_ - decided_end_));
    else
      PROCSNAP_TRY(settlePendingZerosAsZero());
  }
  position_ += kPageSize;
  PROCSNAP_TRY(store(bytes, kPageSize));
  previous_stored_ = true;
  return success();
}

Result<void> ChunkAssembler::addRange(uint64_t end, PageState state) {
  if (end <= position_)
    return success();
  PROCSNAP_TRY(settlePendingZerosAsZero());
  PROCSNAP_TRY(sendChunk());
  appendRun(runs_, position_, end, state);
  position_ = decided_end_ = end;
  previous_stored_ = false;
  zero_run_committed_ = false;
  return success();
}

Result<void> ChunkAssembler::finish() {
  PROCSNAP_TRY(settlePendingZerosAsZero());
  return sendChunk();
}

void ChunkAssembler::markLostAfterSinkError(uint64_t region_end) {
  const uint64_t from = failed_chunk_address_;
  while (!runs_.empty() && runs_.back().start >= from)
    runs_.pop_back();
  if (!runs_.empty() && runs_.back().end > from)
    runs_.back().end = from;
  appendRun(runs_, from, region_end, PageState::Lost);
  position_ = decided_end_ = region_end;
  segments_.clear();
  retained_.clear();
  chunk_size_ = 0;
}

Result<void> ChunkAssembler::settlePendingZerosAsZero() {
  if (decided_end_ >= position_)
    return success();
  PROCSNAP_TRY(sendChunk());
  appendRun(runs_, decided_end_, position_, PageState::Zero);
  decided_end_ = position_;
  previous_stored_ = false;
  return success();
}

Result<void> ChunkAssembler::store(const std::byte* bytes, uint64_t size) {
  while (size > 0) {
    if (chunk_size_ == 0)
      chunk_address_ = decided_end_;
    const uint64_t take = std::min(size, kChunkSize - chunk_size_);
    appendToChunk(bytes, take);
    appendRun(runs_, decided_end_, decided_end_ + take, PageState::Stored);
    decided_end_ += take;
    size -= take;
    if (bytes != nullptr)
      bytes += take;
    if (chunk_size_ == kChunkSize)
      PROCSNAP_TRY(sendChunk());
  }
  return success();
}

void ChunkAssembler::appendToChunk(const std::byte* bytes, uint64_t size) {
  chunk_size_ += size;
  if (!segments_.empty()) {
    Segment& last = segments_.back();
    const bool continues_zeros = bytes == nullptr && last.bytes == nullptr;
    const bool continues_bytes =
        bytes != nullptr && last.bytes != nullptr && last.bytes + last.size == bytes;
    if (continues_zeros || continues_bytes) {
      last.size += size;
      return;
    }
  }
  segments_.push_back(Segment{bytes, size});
}

void ChunkAssembler::releaseBuffers() {
  if (chunk_size_ == 0)
    return;
  if (segments_.size() == 1 && segments_[0].bytes == retained_.data() &&
      retained_.size() == chunk_size_)
    return; // already held here
  std::vector<std::byte> kept;
  kept.reserve(chunk_size_);
  for (const Segment& segment : segments_) {
    if (segment.bytes == nullptr)
      kept.insert(kept.end(), segment.size, std::byte{0});
    else
      kept.insert(kept.end(), segment.bytes, segment.bytes + segment.size);
  }
  retained_ = std::move(kept);
  segments_.assign(1, Segment{retained_.data(), retained_.size()});
}

Result<void> ChunkAssembler::sendChunk() {
  if (chunk_size_ == 0)
    return success();
  CopiedChunk chunk;
  chunk.address = chunk_address_;
  releaseBuffers();
  chunk.bytes = std::move(retained_);
  retained_.clear();
  segments_.clear();
  chunk_size_ = 0;
  failed_chunk_address_ = chunk.address;
  return sink_(std::move(chunk));
}

} // namespace procsnap
