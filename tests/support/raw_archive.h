// Builds an archive block by block, for hostile-input tests: every checksum holds, so only the
// reader's own validation stands between a lying size and a big allocation. Index entries can
// be altered before finish() to make them lie.
#pragma once

#include "common/archive/format.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace procsnap::test {

class RawArchive final {
public:
  RawArchive(); // starts with the file header

  // Appends a block and returns its index entry, which the caller may alter before finish().
  format::IndexEntry& add(format::BlockType type, uint16_t flags,
                          std::span<const std::byte> payload, uint64_t uncompressed_size = 0);
  // A zstd-compressed JSON document (METADATA, STATS, ...).
  format::IndexEntry& addDocument(format::BlockType type, std::string_view json);
  // A chunk of memory at address, compressed as the writer does; after_frame is appended to
  // the payload after the zstd frame (a smuggled skippable frame, say).
  format::IndexEntry& addChunk(uint64_t address, std::span<const std::byte> memory,
                               std::span<const std::byte> after_frame = {});

  // The whole archive: the blocks, then the index (declaring count_override entries when set)
  // and the trailer.
  std::vector<std::byte> finish(std::optional<uint64_t> count_override = {});

private:
  std::vector<std::byte> bytes_;
  std::vector<format::IndexEntry> entries_;
};

} // namespace procsnap::test
