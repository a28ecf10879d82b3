// Helpers shared by the fuzz targets: a file in memory that ArchiveReader::open can take by
// path, checksum repair (so mutated archives get past the checksums to the code behind them),
// and an assembler of archives from raw blocks.
#pragma once

#include "common/archive/format.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace procsnap::fuzz {

// An anonymous in-memory file (memfd) holding given bytes, reachable as /proc/self/fd/N.
class MemoryFile final {
public:
  // nullptr when the memfd cannot be made (out of descriptors): the caller skips the input.
  static std::unique_ptr<MemoryFile> create(std::span<const std::byte> bytes);
  ~MemoryFile();
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  const std::string& path() const { return path_; }

private:
  MemoryFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// Recomputes the header and payload checksums of every block found by following block headers
// from offset 16, and the trailer checksum when the last 32 bytes start with its magic.
// Returns whether anything changed.
bool repairChecksums(std::vector<std::byte>& archive);

// One zstd frame (level 1) holding content, with its content size declared.
std::vector<std::byte> zstdFrame(std::span<const std::byte> content);

// Builds a complete archive block by block: file header first, then the blocks added, then an
// index listing them and the trailer.
class ArchiveAssembler final {
public:
  ArchiveAssembler();
  // A block with this payload as stored. uncompressed_size, address and content_hash go to
  // the index entry only.
  void addBlock(format::BlockType type, uint16_t flags, std::span<const std::byte> payload,
                uint64_t uncompressed_size = 0, uint64_t address = 0, uint64_t content_hash = 0);
  // A METADATA, STATS or MODULE block: content compressed into one frame.
  void addDocumentBlock(format::BlockType type, std::span<const std::byte> content);
  std::vector<std::byte> finish(); // index and trailer appended

private:
  std::vector<std::byte> bytes_;
  std::vector<format::IndexEntry> entries_;
};

inline std::span<const std::byte> asBytes(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

// libFuzzer reports a failed property as a crash: trap with a message on stderr.
[[noreturn]] void propertyFailed(const char* what, std::string_view detail);

// Checks the contract of error messages: non-empty and one line.
void checkErrorMessage(std::string_view message);

} // namespace procsnap::fuzz
