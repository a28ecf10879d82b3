// Reads a .psnap archive (docs/FORMAT.md). A complete archive opens from its trailer and
// index without touching chunk data; a truncated or damaged one can be scanned block by block
// and its intact part recovered (OpenMode::Salvage).
#pragma once

#include "common/archive/redaction_manifest.h"
#include "common/model/module_sketch.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace procsnap {

struct ChunkInfo {
  uint64_t address = 0;
  uint32_t size = 0; // uncompressed
  uint64_t content_hash = 0;
  uint64_t block_offset = 0; // of the chunk's block in the file
  uint64_t stored_size = 0;  // compressed frame size
};

struct ModuleInfo {
  ModuleRecord record;
  uint64_t file_size = 0;
  uint64_t block_offset = 0;
};

struct BlockReport {
  uint64_t offset = 0;
  uint16_t type = 0;
  std::string type_name;
  uint64_t size = 0; // whole block, header included
  bool intact = true;
  std::string problem; // when not intact
};

struct VerifyReport {
  uint32_t format_version = 0;
  bool header_ok = false;
  bool trailer_ok = false;
  bool index_ok = false;
  uint64_t blocks_intact = 0;
  uint64_t blocks_damaged = 0;
  uint64_t chunks_checked = 0;      // decompressed and content hash compared
  std::vector<BlockReport> damaged; // every damaged block
  uint64_t file_size = 0;
  uint64_t intact_prefix = 0; // bytes from the start up to the first damage or truncation

  bool ok() const { return header_ok && trailer_ok && index_ok && blocks_damaged == 0; }
};

enum class OpenMode {
  Strict,  // the trailer and index must be intact
  Salvage, // fall back to scanning blocks when they are not
};

// After open(), every const method may be called from several threads at once (each thread
// decompresses with its own zstd context).
class ArchiveReader final {
public:
  // Maps the file read-only. Errors: NotFound, Malformed ("not a procsnap archive"),
  // Unsupported (newer version), Truncated / Corrupt (Strict mode; Salvage recovers).
  static Result<std::unique_ptr<ArchiveReader>> open(const std::string& path,
                                                     OpenMode mode = OpenMode::Strict);
  ~ArchiveReader();
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;

  uint32_t formatVersion() const;
  bool complete() const; // opened from an intact trailer and index
  bool salvaged() const; // opened by scanning
  uint64_t fileSize() const;

  const SnapshotMetadata& metadata() const;     // stats replaced by the STATS block when present
  const std::vector<ChunkInfo>& chunks() const; // sorted by address, disjoint
  const ChunkInfo* findChunk(uint64_t address) const; // the chunk containing address, or null
  // Decompresses one chunk and checks its content hash; out must hold chunk.size bytes.
  Result<void> readChunk(const ChunkInfo& chunk, std::span<std::byte> out) const;

  const std::vector<ModuleInfo>& modules() const;

  // The --redact manifest (REDACTION block), or null when the capture redacted nothing.
  const RedactionManifest* redactions() const;
  Result<ModuleSketch> readModule(size_t index) const;

  // Checks every block checksum, decompresses every chunk and compares its content hash.
  // progress(done_bytes, total_bytes) is called now and then when set.
  VerifyReport verify(const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

private:
  ArchiveReader();
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace procsnap
