// Snapshot over a .psnap archive (common/archive/reader.h): decompresses only the chunks a
// read touches and keeps an LRU of them bounded in bytes, so memory stays bounded whatever the
// archive's size.
#pragma once

#include "analyze/model/snapshot.h"
#include "common/archive/reader.h"

#include <list>
#include <memory>
#include <string>
#include <vector>

namespace procsnap::analyze {

class ArchiveSnapshot final : public Snapshot {
public:
  static llvm::Expected<std::unique_ptr<ArchiveSnapshot>> open(llvm::StringRef path,
                                                               const OpenOptions& options);
  ~ArchiveSnapshot() override;
  ArchiveSnapshot(const ArchiveSnapshot&) = delete;
  ArchiveSnapshot& operator=(const ArchiveSnapshot&) = delete;

  // The underlying reader (verify, diff by content hash). Owned by this snapshot.
  const ArchiveReader& reader() const { return *reader_; }

  // Interface:
  const SnapshotMetadata& metadata() const override;
  llvm::StringRef sourceKind() const override { return "archive"; }
  llvm::StringRef sourcePath() const override { return path_; }
  llvm::Expected<ReadResult> read(uint64_t address,
                                  llvm::MutableArrayRef<uint8_t> out) const override;
  std::vector<StoredExtent> storedExtents(uint64_t start, uint64_t end) const override;
  llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
  moduleImage(size_t module_index) const override;
  // The chunks' XXH3-64 content hashes from the index (docs/FORMAT.md 4.3).
  ContentDigests contentDigests(uint64_t start, uint64_t end) const override;

  // Chunks decompressed so far (tests check that a read touches only what it needs).
  uint64_t chunksDecompressed() const { return chunks_decompressed_; }

private:
  struct CachedChunk {
    size_t chunk_index = 0;
    std::vector<uint8_t> bytes;
  };

  ArchiveSnapshot(std::string path, std::unique_ptr<ArchiveReader> reader,
                  const OpenOptions& options);
  llvm::Expected<const std::vector<uint8_t>*> chunkBytes(size_t chunk_index) const;
  // Index into reader_->modules() of the sketch for metadata().modules[module_index], or -1.
  int sketchIndexFor(size_t module_index) const;

  std::string path_;
  std::unique_ptr<ArchiveReader> reader_;
  uint64_t cache_capacity_;              // bytes
  mutable std::list<CachedChunk> cache_; // most recently used first
  mutable uint64_t cache_bytes_ = 0;     // capacity of the cached buffers
  mutable uint64_t chunks_decompressed_ = 0;
};

} // namespace procsnap::analyze
