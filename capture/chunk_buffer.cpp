#include "capture/chunk_buffer.h"

#include <algorithm>
#include <cstring>
#include <zstd.h>

namespace procsnap {

ChunkBuffer::ChunkBuffer(uint64_t budget_bytes, int level) : budget_(budget_bytes), level_(level) {}

ChunkBuffer::~ChunkBuffer() = default;

Result<void> ChunkBuffer::add(CopiedChunk&& chunk) {
  if (chunk.bytes.empty())
    return success();
  if (chunk.bytes.size() > kChunkSize)
    return Error::make(ErrorCode::InvalidArgument, "copied chunk larger than the chunk size");
  Entry entry;
  entry.address = chunk.address;
  entry.size = static_cast<uint32_t>(chunk.bytes.size());
  stored_bytes_ += entry.size;
  if (raw_bytes_ + entry.size <= budget_) {
    raw_bytes_ += entry.size;
    entry.raw = std::move(chunk.bytes);
  } else {
    if (!inline_compressor_)
      inline_compressor_ = std::make_unique<ChunkCompressor>(level_);
    auto compressed = inline_compressor_->compress(chunk.address, chunk.bytes);
    if (!compressed)
      return std::move(compressed).takeError();
    entry.compressed = std::move(*compressed);
    ++compressed_inline_;
  }
  entries_.push_back(std::move(entry));
  return success();
}

void ChunkBuffer::sortByAddress() {
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.address < b.address; });
}

void ChunkBuffer::discard(uint64_t start, uint64_t end) {
  std::erase_if(entries_, [&](const Entry& entry) {
    if (entry.address < start || entry.address >= end)
      return false;
    stored_bytes_ -= entry.size;
    raw_bytes_ -= entry.raw.size();
    return true;
  });
}

bool ChunkBuffer::read(uint64_t address, std::span<std::byte> out) const {
  // Entries may not be sorted yet: a linear scan is fine for the few header reads.
  for (const Entry& entry : entries_) {
    if (address < entry.address || address - entry.address > entry.size ||
        out.size() > entry.size - (address - entry.address))
      continue;
    const uint64_t offset = address - entry.address;
    if (!entry.raw.empty()) {
      std::memcpy(out.data(), entry.raw.data() + offset, out.size());
      return true;
    }
    if (!entry.compressed)
      return false;
    std::vector<std::byte> bytes(entry.size);
    const size_t n = ZSTD_decompress(bytes.data(), bytes.size(), entry.compressed->frame.data(),
                                     entry.compressed->frame.size());
    if (ZSTD_isError(n) || n != entry.size)
      return false;
    std::memcpy(out.data(), bytes.data() + offset, out.size());
    return true;
  }
  return false;
}

} // namespace procsnap
