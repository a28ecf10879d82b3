// A captured process as the analyzer sees it: metadata, memory by address, and the ELF images
// of its modules. One interface for every source (a .psnap archive now, ELF cores later), so no
// command can tell which source it holds (Crashpad's ProcessSnapshot shape).
#pragma once

#include "common/model/snapshot_metadata.h"

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/STLFunctionalExtras.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace procsnap::analyze {

// One stretch of a read request, in address order. Runs cover the request exactly, without
// gaps. A run outside every region has mapped = false (the address was not mapped at capture
// time); its state is then PageState::NotPresent and means nothing more.
struct ReadRun {
  uint64_t start = 0;
  uint64_t end = 0; // exclusive
  bool mapped = true;
  PageState state = PageState::Stored;
  // Index into metadata().regions of the region holding the run, or -1 when !mapped.
  int region_index = -1;

  uint64_t size() const { return end - start; }
};

struct ReadResult {
  uint64_t bytes_stored = 0; // bytes of the request that came from the snapshot
  std::vector<ReadRun> runs; // adjacent runs with equal (mapped, state, region) are merged
  bool allStored() const {
    return !runs.empty() && bytes_stored == runs.back().end - runs.front().start;
  }
  bool anyUnmapped() const;
  // Appends [start, stop), merging it into the last run when that one ends at start and has
  // the same mapped, state and region.
  void addRun(uint64_t start, uint64_t stop, bool mapped, PageState state, int region_index);
};

// Copies the bytes of one piece of a page run whose state holds bytes (holdsBytes) into out
// (already zeroed), and records what it found with result.addRun, covering [start, stop)
// exactly (a source may find part of it missing: Lost), counting result.bytes_stored.
using CopyPiece = llvm::function_ref<llvm::Error(int region_index, PageState state, uint64_t start,
                                                 uint64_t stop, uint8_t* out, ReadResult& result)>;

// Snapshot::read for sources whose metadata describes every page: zero-fills out, walks the
// regions and page runs over [address, address + out.size()), records unmapped gaps and
// unstored pieces itself and calls copy for the pieces that hold bytes.
llvm::Expected<ReadResult> readByPageRuns(const SnapshotMetadata& metadata, uint64_t address,
                                          llvm::MutableArrayRef<uint8_t> out, CopyPiece copy);

// A range of addresses whose bytes the snapshot holds.
struct StoredExtent {
  uint64_t start = 0;
  uint64_t end = 0; // exclusive

  uint64_t size() const { return end - start; }
};

// The hash a source recorded at capture time for one stretch of its stored bytes (archives: a
// chunk's content hash), so two snapshots can be compared without decompressing anything.
struct ContentDigest {
  uint64_t start = 0;
  uint64_t end = 0; // exclusive
  uint64_t hash = 0;

  uint64_t size() const { return end - start; }
};

// The digests of a source, with the name of their algorithm: two digests are comparable only
// when both sources name the same, non-empty algorithm.
struct ContentDigests {
  std::string algorithm;              // "xxh3-64"; empty when the source records none
  std::vector<ContentDigest> digests; // sorted by start, disjoint
};

struct OpenOptions {
  // Open damaged or truncated sources by scanning what is intact (archives: OpenMode::Salvage).
  bool salvage = false;
  // Bytes of decompressed chunks kept for reuse: bounds the memory a command spends on
  // caching whatever the snapshot's size and whatever its chunks' sizes (1 MiB from the
  // capturer, up to 64 MiB allowed). The chunk being read is kept even when it alone is
  // larger.
  uint64_t chunk_cache_bytes = 16ull << 20;
  // Where ELF cores look for the module files whose pages they leave out (docs/CORES.md):
  // the original path (unless use_original_paths is false), sysroot + path, and
  // DIR/.build-id/xx/rest for each debug dir; each candidate's build-id must match.
  std::string sysroot;
  std::vector<std::string> debug_dirs;
  bool use_original_paths = true;
};

class Snapshot {
public:
  virtual ~Snapshot();

  // Process, host, capture statistics, regions (sorted by start, with page runs and kinds),
  // threads (main first) and modules. Owned by the snapshot, valid for its lifetime.
  virtual const SnapshotMetadata& metadata() const = 0;

  // "archive" (later "core"), for messages and `info`.
  virtual llvm::StringRef sourceKind() const = 0;
  virtual llvm::StringRef sourcePath() const = 0;

  // Reads [address, address + out.size()): stored bytes where the snapshot holds them, zeros
  // everywhere else, and says in the runs what was where. Fails only when the source itself
  // is damaged (a chunk fails its hash) or unreadable; unmapped or unstored addresses are not
  // errors. Thread-compatible (not thread-safe: it updates a cache).
  virtual llvm::Expected<ReadResult> read(uint64_t address,
                                          llvm::MutableArrayRef<uint8_t> out) const = 0;

  // The stored byte ranges inside [start, end), sorted, disjoint and merged where adjacent,
  // so dump can write sparse files and strings can scan only stored bytes. Costs no
  // decompression.
  virtual std::vector<StoredExtent> storedExtents(uint64_t start, uint64_t end) const = 0;

  // The ELF image the snapshot carries for metadata().modules[module_index]: the whole
  // embedded binary (ModuleRecord::embedded) or the module sketch laid out over its file size
  // (holes read as zeros), named uniquely (the symbolizer caches by buffer name). nullptr when
  // the snapshot holds none for it; an Error when it holds one but cannot read it.
  virtual llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
  moduleImage(size_t module_index) const = 0;

  // The digests recorded for stored bytes overlapping [start, end), each whole (a digest may
  // reach outside the range). Costs no decompression. The default records none: sources
  // without digests are compared byte by byte.
  virtual ContentDigests contentDigests(uint64_t start, uint64_t end) const;

  // Non-virtual helpers over metadata().
  // Index of the region containing address, or -1.
  int findRegion(uint64_t address) const;
};

// Opens any supported source, recognized by its content (magic), not its name: now .psnap
// archives. Errors name the path: "cannot open 'x': ...".
llvm::Expected<std::unique_ptr<Snapshot>> openSnapshot(llvm::StringRef path,
                                                       const OpenOptions& options = {});

// Converts a common/ error into an llvm::Error (the boundary between common/ and analyze/).
llvm::Error toLlvmError(const procsnap::Error& error);
// Success, or the error of result.
llvm::Error toLlvmError(const procsnap::Result<void>& result);

} // namespace procsnap::analyze
