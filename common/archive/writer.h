// Writes a .psnap archive (docs/FORMAT.md) append-only to a file descriptor, so it works on
// pipes. Chunks are compressed beforehand (ChunkCompressor, one per thread) and written in
// any order.
#pragma once

#include "common/archive/redaction_manifest.h"
#include "common/model/module_sketch.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace procsnap {

// About 1 MiB of uncompressed region contents per chunk: big enough for a good ratio, small
// enough that random access decompresses little.
inline constexpr uint32_t kChunkSize = 1u << 20;

// XXH3-64 (seed 0) of uncompressed bytes: the content hash of chunks.
uint64_t contentHash(std::span<const std::byte> bytes);

struct CompressedChunk {
  uint64_t address = 0;
  uint32_t size = 0;            // uncompressed bytes
  uint64_t content_hash = 0;    // contentHash() of the uncompressed bytes
  std::vector<std::byte> frame; // one zstd frame
};

// Not thread-safe: use one per thread.
class ChunkCompressor final {
public:
  explicit ChunkCompressor(int level = 3);
  ~ChunkCompressor();
  ChunkCompressor(const ChunkCompressor&) = delete;
  ChunkCompressor& operator=(const ChunkCompressor&) = delete;

  Result<CompressedChunk> compress(uint64_t address, std::span<const std::byte> bytes);

private:
  struct Context;
  std::unique_ptr<Context> context_;
};

class ArchiveWriter final {
public:
  // Does not own fd; never seeks it.
  explicit ArchiveWriter(int fd);
  ~ArchiveWriter();
  ArchiveWriter(const ArchiveWriter&) = delete;
  ArchiveWriter& operator=(const ArchiveWriter&) = delete;

  // Call in this order: header, metadata, then modules, chunks and at most one redaction
  // manifest in any order and number,
  // then stats, then finish. A writer that stops before finish() leaves a truncated archive
  // whose intact blocks a reader can salvage.
  Result<void> writeHeader();
  Result<void> writeMetadata(const SnapshotMetadata& metadata);
  Result<void> writeModule(const ModuleSketch& sketch);
  Result<void> writeChunk(const CompressedChunk& chunk);
  // The --redact manifest, at most once, in the same phase as modules and chunks.
  Result<void> writeRedactions(const RedactionManifest& manifest);
  Result<void> writeStats(const CaptureStats& stats);
  Result<void> finish(); // index block and trailer

  // Marks the capture partial after the METADATA block went out (e.g. the target exited
  // while chunks were written): recorded in the STATS block and the trailer's flags, and a
  // reader reports metadata().partial. Call before writeStats()/finish().
  void setPartial(std::string reason);

  uint64_t bytesWritten() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace procsnap
