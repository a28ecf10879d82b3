#include "fuzz/fuzz_support.h"

#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

namespace procsnap::fuzz {

namespace {

bool writeAll(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n <= 0)
      return false;
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return true;
}

} // namespace

std::unique_ptr<MemoryFile> MemoryFile::create(std::span<const std::byte> bytes) {
  const int fd = ::memfd_create("procsnap-fuzz", MFD_CLOEXEC);
  if (fd < 0)
    return nullptr;
  if (!writeAll(fd, bytes)) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<MemoryFile>(new MemoryFile(fd, "/proc/self/fd/" + std::to_string(fd)));
}

MemoryFile::~MemoryFile() {
  ::close(fd_);
}

bool repairChecksums(std::vector<std::byte>& archive) {
  const uint64_t size = archive.size();
  bool changed = false;
  auto store32 = [&](uint64_t at, uint32_t value) {
    if (format::loadU32(archive.data() + at) != value) {
      format::storeU32(archive.data() + at, value);
      changed = true;
    }
  };
  auto store64 = [&](uint64_t at, uint64_t value) {
    if (format::loadU64(archive.data() + at) != value) {
      format::storeU64(archive.data() + at, value);
      changed = true;
    }
  };
  uint64_t pos = format::kFileHeaderSize;
  while (size >= pos && size - pos >= format::kBlockHeaderSize &&
         format::hasMagic(archive.data() + pos, format::kBlockMagic)) {
    const uint64_t payload_size = format::loadU64(archive.data() + pos + 8);
    if (payload_size > size - pos - format::kBlockHeaderSize)
      break;
    store64(pos + 16, format::xxh3({archive.data() + pos + format::kBlockHeaderSize,
                                    static_cast<size_t>(payload_size)}));
    store32(pos + format::kBlockHeaderCheckedBytes,
            format::xxh3Low32({archive.data() + pos, format::kBlockHeaderCheckedBytes}));
    pos += format::kBlockHeaderSize + payload_size;
  }
  if (size >= format::kFileHeaderSize + format::kTrailerSize) {
    const uint64_t trailer = size - format::kTrailerSize;
    if (format::hasMagic(archive.data() + trailer, format::kTrailerMagic))
      store32(trailer + format::kTrailerCheckedBytes,
              format::xxh3Low32({archive.data() + trailer, format::kTrailerCheckedBytes}));
  }
  return changed;
}

std::vector<std::byte> zstdFrame(std::span<const std::byte> content) {
  std::vector<std::byte> frame(ZSTD_compressBound(content.size()));
  const size_t n = ZSTD_compress(frame.data(), frame.size(), content.data(), content.size(), 1);
  if (ZSTD_isError(n))
    propertyFailed("zstd cannot compress", ZSTD_getErrorName(n));
  frame.resize(n);
  return frame;
}

ArchiveAssembler::ArchiveAssembler() : bytes_(format::kFileHeaderSize) {
  std::memcpy(bytes_.data(), format::kFileMagic.data(), format::kFileMagic.size());
  format::storeU32(bytes_.data() + 8, format::kFormatVersion);
}

void ArchiveAssembler::addBlock(format::BlockType type, uint16_t flags,
                                std::span<const std::byte> payload, uint64_t uncompressed_size,
                                uint64_t address, uint64_t content_hash) {
  format::IndexEntry entry;
  entry.block_offset = bytes_.size();
  entry.type = static_cast<uint16_t>(type);
  entry.flags = flags;
  entry.address = address;
  entry.uncompressed_size = uncompressed_size;
  entry.block_size = format::kBlockHeaderSize + payload.size();
  entry.content_hash = content_hash;
  if (type != format::BlockType::Index)
    entries_.push_back(entry);
  format::BlockHeader header;
  header.type = entry.type;
  header.flags = flags;
  header.payload_size = payload.size();
  header.payload_checksum = format::xxh3(payload);
  const size_t at = bytes_.size();
  bytes_.resize(at + format::kBlockHeaderSize);
  format::encodeBlockHeader(header, bytes_.data() + at);
  bytes_.insert(bytes_.end(), payload.begin(), payload.end());
}

void ArchiveAssembler::addDocumentBlock(format::BlockType type,
                                        std::span<const std::byte> content) {
  addBlock(type, format::kBlockFlagZstdPayload, zstdFrame(content), content.size());
}

std::vector<std::byte> ArchiveAssembler::finish() {
  std::vector<std::byte> table(format::kIndexHeaderSize +
                               entries_.size() * format::kIndexEntrySize);
  format::storeU32(table.data(), format::kIndexEntrySize);
  format::storeU64(table.data() + 8, entries_.size());
  for (size_t i = 0; i < entries_.size(); ++i)
    format::encodeIndexEntry(entries_[i],
                             table.data() + format::kIndexHeaderSize + i * format::kIndexEntrySize);
  const uint64_t index_offset = bytes_.size();
  addBlock(format::BlockType::Index, 0, table);
  format::Trailer trailer;
  trailer.index_block_offset = index_offset;
  trailer.file_size = bytes_.size() + format::kTrailerSize;
  const size_t at = bytes_.size();
  bytes_.resize(at + format::kTrailerSize);
  format::encodeTrailer(trailer, bytes_.data() + at);
  return std::move(bytes_);
}

void propertyFailed(const char* what, std::string_view detail) {
  std::fprintf(stderr, "property failed: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void checkErrorMessage(std::string_view message) {
  if (message.empty())
    propertyFailed("empty error message", "");
  if (message.find('\n') != std::string_view::npos)
    propertyFailed("error message spans several lines", message);
}

} // namespace procsnap::fuzz
