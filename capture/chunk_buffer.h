// The copied memory of a capture, held until it is compressed and written. While the target
// is frozen, chunks are kept as copied until their total reaches the --max-buffer budget;
// after that each new chunk is compressed on the spot and only the frame is kept, so a huge
// target never exhausts memory (at the price of a longer pause, which the stats record).
#pragma once

#include "capture/memory_copier.h"
#include "common/archive/writer.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace procsnap {

class ChunkBuffer final {
public:
  struct Entry {
    uint64_t address = 0;
    uint32_t size = 0;          // uncompressed bytes
    std::vector<std::byte> raw; // empty once compressed
    std::optional<CompressedChunk> compressed;
  };

  // budget_bytes: uncompressed bytes kept before compressing inline; level: zstd level.
  ChunkBuffer(uint64_t budget_bytes, int level);
  ~ChunkBuffer();
  ChunkBuffer(const ChunkBuffer&) = delete;
  ChunkBuffer& operator=(const ChunkBuffer&) = delete;

  // The ChunkSink of MemoryCopier::copyRegion.
  Result<void> add(CopiedChunk&& chunk);

  // Drops the chunks that start in [start, end): a region found afterwards not to belong in
  // the archive (capture --cow learns the VmFlags at the fork only after the thaw).
  void discard(uint64_t start, uint64_t end);

  // Sorts the entries by address (the copier delivers them in order region by region; this
  // makes the order a guarantee).
  void sortByAddress();

  std::vector<Entry>& entries() { return entries_; }
  const std::vector<Entry>& entries() const { return entries_; }

  uint64_t rawBytes() const { return raw_bytes_; }       // currently held uncompressed
  uint64_t storedBytes() const { return stored_bytes_; } // all chunks, uncompressed size
  bool compressedWhileFrozen() const { return compressed_inline_ != 0; }
  uint64_t chunksCompressedWhileFrozen() const { return compressed_inline_; }

  // Copies [address, address + out.size()) from the chunks into out when every byte is in
  // one stored chunk (decompressing an inline-compressed one). For small reads such as ELF
  // headers; false when the range is not fully stored there.
  bool read(uint64_t address, std::span<std::byte> out) const;

private:
  uint64_t budget_;
  int level_;
  std::unique_ptr<ChunkCompressor> inline_compressor_; // created when the budget is reached
  std::vector<Entry> entries_;
  uint64_t raw_bytes_ = 0;
  uint64_t stored_bytes_ = 0;
  uint64_t compressed_inline_ = 0;
};

} // namespace procsnap
