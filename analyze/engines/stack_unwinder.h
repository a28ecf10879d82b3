// Unwinds every thread of a snapshot: DWARF CFI through elfutils libdwfl first, then a validated
// frame-pointer step, then a bounded scan of the stack for return addresses (rust-minidump's
// order), each frame marked with how it was found. Plain data in and out: the .cpp includes
// <elf.h> through libdwfl, which cannot share a translation unit with LLVM's ELF headers, so
// the ELF images come in as bytes (unwind_images.h builds them) and nothing here names LLVM's
// object library.
#pragma once

#include "analyze/model/snapshot.h"

#include <llvm/ADT/ArrayRef.h>

#include <cstdint>
#include <string>
#include <vector>

namespace procsnap::analyze {

// How a frame was found, from most to least trustworthy.
enum class FrameTrust {
  Context,      // the thread's registers (frame 0)
  Cfi,          // DWARF call-frame information (.eh_frame, .debug_frame)
  FramePointer, // the saved rbp chain, validated
  Scan,         // a stack word that points just after a call instruction
};
llvm::StringRef toString(FrameTrust trust); // "context", "cfi", "frame-pointer", "scan"

// The ELF image of one module, at runtime addresses [low, high) (low: where the first PT_LOAD
// is mapped). The bytes are laid out by file offset: the file itself, or its mappings copied
// from the snapshot (section headers cleared, so libdw finds .eh_frame through
// PT_GNU_EH_FRAME).
struct UnwindImage {
  std::string name; // the module's path, "[vdso]"
  uint64_t low = 0;
  uint64_t high = 0;
  llvm::ArrayRef<uint8_t> elf; // owned by the caller, valid during unwindThreads
};

struct UnwoundFrame {
  uint64_t pc = 0;
  uint64_t sp = 0; // 0 when unknown
  // false for a return address: the call is at pc - 1 (look symbols up there).
  bool activation = true;
  FrameTrust trust = FrameTrust::Context;
  // The signal trampoline (__restore_rt): gdb's "<signal handler called>".
  bool signal_trampoline = false;
};

struct UnwoundThread {
  size_t thread_index = 0; // into metadata().threads
  std::vector<UnwoundFrame> frames;
  // Why the walk ended: "end of stack" (the CFI says outermost), "frame limit", "pc outside
  // executable mappings", "non-increasing stack pointer", "no unwind information" ...
  std::string stop_reason;
  bool complete = false; // ended where the CFI (or a zero return address) says the stack ends
};

struct UnwindOptions {
  size_t max_frames = 256;
  // Words of stack scanned for a return address at each scan step.
  size_t scan_words = 1024;
  // Threads to unwind (indices into metadata().threads); empty = all.
  std::vector<size_t> thread_indices;
};

// Never fails: a thread whose registers are missing gets no frames and a stop reason; problems
// that concern the whole walk (libdwfl refusing the modules) go to warnings.
std::vector<UnwoundThread> unwindThreads(const Snapshot& snapshot,
                                         llvm::ArrayRef<UnwindImage> images,
                                         const UnwindOptions& options,
                                         std::vector<std::string>& warnings);

} // namespace procsnap::analyze
