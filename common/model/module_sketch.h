// A module sketch: the parts of an ELF file the analyzer needs to name sections and symbols
// (headers, section headers, symbol and string tables, notes), as byte pieces at their file
// offsets. Holes read as zeros, so the pieces laid out over file_size form a valid ELF image
// for any ELF parser. An embedded binary is a sketch with one piece: the whole file.
#pragma once

#include "common/model/snapshot_metadata.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace procsnap {

struct ModuleSketch {
  struct Piece {
    uint64_t offset = 0;
    std::vector<std::byte> bytes;
  };

  ModuleRecord record;
  uint64_t file_size = 0;
  std::vector<Piece> pieces; // sorted by offset, disjoint, each inside [0, file_size)
};

} // namespace procsnap
