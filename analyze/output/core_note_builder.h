// Builds the PT_NOTE contents of an ELF core from a snapshot's metadata, in the kernel's order:
// for the first (main) thread NT_PRSTATUS, then the process notes NT_PRPSINFO, NT_AUXV and
// NT_FILE, then the thread's other register sets (NT_PRFPREG, NT_X86_XSTATE, ...); then each
// further thread's NT_PRSTATUS and register sets. NT_PRSTATUS is a full struct elf_prstatus
// around the captured user_regs_struct, not the raw PTRACE_GETREGSET bytes.
#pragma once

#include "common/model/snapshot_metadata.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct CoreNoteEntry {
  std::string owner; // "CORE" or "LINUX"
  uint32_t type = 0;
  uint64_t descriptor_size = 0;
  int32_t tid = 0; // the thread a register note belongs to, 0 for process notes
};

struct CoreNotes {
  std::vector<std::byte> bytes; // the PT_NOTE segment, ready to write
  std::vector<CoreNoteEntry> entries;
  // What the core will lack and why (no auxv, a thread without registers, ...).
  std::vector<std::string> warnings;
};

// Never fails: what the metadata lacks is left zero and reported in warnings.
CoreNotes buildCoreNotes(const SnapshotMetadata& metadata);

} // namespace procsnap::analyze
