// Writes any Snapshot as an x86-64 ELF core file (docs/CORES.md) that gdb loads with the
// executable: ELF header, program headers (PT_NOTE, then one PT_LOAD per region in address
// order), the notes (core_note_builder.h), then each region's bytes at page-aligned offsets.
// A region's p_filesz reaches to the end of its last page whose contents the snapshot knows
// (stored or read as zero); pages not stored inside it are holes, so the file is sparse, and a
// region with nothing known has p_filesz 0 (gdb then reads a file-backed one from its file,
// like the kernel's cores). Memory use is one block whatever the snapshot's size.
#pragma once

#include "analyze/model/snapshot.h"
#include "analyze/output/core_note_builder.h"

#include <llvm/Support/Error.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct CoreWriteOptions {
  std::string path;
  bool force = false;   // replace an existing file
  bool salvage = false; // stored bytes the source cannot give become holes, with a warning
};

struct CoreWriteSummary {
  std::vector<CoreNoteEntry> notes;
  uint32_t threads = 0;
  uint32_t load_segments = 0;
  uint32_t segments_without_contents = 0; // p_filesz 0
  uint64_t memory_size = 0;               // sum of p_memsz
  uint64_t contents_size = 0;             // sum of p_filesz
  uint64_t bytes_written = 0;             // memory bytes written (stored, not all-zero pages)
  uint64_t bytes_unavailable = 0;         // stored bytes the source could not give (salvage)
  uint64_t file_size = 0;                 // apparent size of the core
  uint64_t allocated_size = 0;            // disk space it takes (the file is sparse)
  std::vector<std::string> warnings;
};

// Called with the stored bytes copied so far and their total.
using CoreWriteProgress = std::function<void(uint64_t done, uint64_t total)>;

llvm::Expected<CoreWriteSummary> writeCore(const Snapshot& snapshot,
                                           const CoreWriteOptions& options,
                                           const CoreWriteProgress& progress = {});

} // namespace procsnap::analyze
