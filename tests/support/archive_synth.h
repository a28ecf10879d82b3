// Synthesizes small .psnap archives for tests, with known contents: every stored byte is
// syntheticByte(address), so a test can check any read without keeping the data around.
#pragma once

#include "common/archive/writer.h"
#include "common/model/module_sketch.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace procsnap::test {

// The byte a synthetic archive stores at address (a mix of the address bits; never constant
// over a page, so misplaced reads show).
std::byte syntheticByte(uint64_t address);

// Metadata of a small made-up process (pid 4242, "synthetic"): regions of several kinds, each
// with page runs of several states, one thread with an NT_PRSTATUS register set, one module.
//   0x400000-0x402000   r-xp /synthetic/bin  text     stored
//   0x601000-0x604000   rw-p /synthetic/bin  data     stored, zero, stored
//   0x1000000-0x1010000 rw-p [heap]          heap     stored (8 pages), not-present (8)
//   0x7ffd0000-0x7fff0000 rw-p [stack]       stack    not-present, stored (last 4 pages)
//   0x7fff0000-0x7fff2000 r--p [vvar]        vvar     unreadable
SnapshotMetadata syntheticMetadata();

struct SyntheticChunk {
  uint64_t address = 0;
  std::vector<std::byte> bytes;
};

// Chunks holding syntheticByte() for every Stored page run of metadata, cut at chunk_size.
std::vector<SyntheticChunk> syntheticChunks(const SnapshotMetadata& metadata,
                                            uint32_t chunk_size = kChunkSize);

struct SynthOptions {
  std::vector<ModuleSketch> modules;
  bool write_stats = true;
  bool finish = true; // false leaves an archive without index and trailer (a dead writer)
  int level = 1;      // zstd level of the chunks
};

// Writes metadata, the modules and the chunks to a new file at path (mode 0600).
Result<void> writeSyntheticArchive(const std::string& path, const SnapshotMetadata& metadata,
                                   const std::vector<SyntheticChunk>& chunks,
                                   const SynthOptions& options = {});

// syntheticMetadata() and its syntheticChunks() written to path; returns the metadata.
Result<SnapshotMetadata> writeDefaultSyntheticArchive(const std::string& path);

// A module sketch embedding the whole file at path (one piece), e.g. a test's own binary.
Result<ModuleSketch> embeddedModuleSketch(const std::string& path);

// Whole-file helpers for tests that damage archives on purpose.
Result<std::vector<std::byte>> readFileBytes(const std::string& path);
Result<void> writeFileBytes(const std::string& path, std::span<const std::byte> bytes);

} // namespace procsnap::test
