// Builds a module sketch (common/model/module_sketch.h) from an open ELF file with plain reads:
// the pieces an ELF parser needs to list sections and symbols, at their file offsets.
// capture/ links no LLVM, so this reads the file with <elf.h> structures.
#pragma once

#include "common/model/module_sketch.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace procsnap {

// Files larger than this are not embedded whole unless the caller says otherwise: embedding
// is for binaries, and a binary of a gigabyte is already extraordinary.
inline constexpr uint64_t kDefaultMaxEmbedFileSize = uint64_t{1} << 30;

// Bytes one module's sketch may hold, and all sketches of one archive: a sketch is a few
// hundred KiB to tens of MiB (libLLVM's symbol tables), and a forged file whose symbol table
// spans a 512 MiB sparse file must not make the capturer read and hold all of it.
inline constexpr uint64_t kMaxSketchBytesPerModule = uint64_t{128} << 20;
inline constexpr uint64_t kMaxSketchBytesPerArchive = uint64_t{512} << 20;

struct SketchOptions {
  bool embed_whole_file = false;                     // one piece: the whole file
  uint64_t max_file_size = kDefaultMaxEmbedFileSize; // larger files are sketched, not embedded
  // A sketch larger than this leaves out its symbol tables and says so in a warning; when
  // even the headers, names and notes do not fit, the module gets no sketch (an error).
  // Not applied to embed_whole_file, which max_file_size bounds.
  uint64_t max_sketch_bytes = kMaxSketchBytesPerModule;
};

// Sketches the ELF file open at fd (ELFCLASS32 or ELFCLASS64, little-endian). The record is
// base with build_id, file_size and embedded filled in. The sketch holds the ELF header, the
// program and section header tables, the section name table, .symtab/.dynsym with their
// string tables and extended indices, symbol versions, SHT_NOTE sections, .gnu_debuglink,
// .gnu_debugdata and the bytes of PT_NOTE, PT_DYNAMIC and PT_INTERP (so that readelf -l
// shows the interpreter), merged into disjoint pieces.
// A damaged header or header table is an error; a single damaged section or segment is
// left out and described in warnings (when given), and so are symbol tables over the budget.
Result<ModuleSketch> sketchModule(int fd, const ModuleRecord& base, const SketchOptions& options,
                                  std::vector<std::string>* warnings = nullptr);

// The GNU build-id (lowercase hex) in a run of ELF notes, or "" when there is none or the
// notes are damaged. alignment is the notes' alignment: 4, or 8 for p_align/sh_addralign 8.
std::string buildIdFromNoteBytes(std::span<const std::byte> notes, size_t alignment = 4);

} // namespace procsnap
