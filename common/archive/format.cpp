#include "common/archive/format.h"

#include <xxhash.h>

namespace procsnap::format {

std::string_view blockTypeName(uint16_t type) {
  switch (static_cast<BlockType>(type)) {
  case BlockType::Metadata:
    return "metadata";
  case BlockType::Module:
    return "module";
  case BlockType::Chunk:
    return "chunk";
  case BlockType::Stats:
    return "stats";
  case BlockType::Index:
    return "index";
  case BlockType::Redaction:
    return "redaction";
  }
  return "unknown";
}

uint64_t xxh3(std::span<const std::byte> bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

void encodeBlockHeader(const BlockHeader& header, std::byte* out) {
  std::memcpy(out, kBlockMagic.data(), kBlockMagic.size());
  storeU16(out + 4, header.type);
  storeU16(out + 6, header.flags);
  storeU64(out + 8, header.payload_size);
  storeU64(out + 16, header.payload_checksum);
  storeU32(out + 24, 0);
  storeU32(out + 28, xxh3Low32({out, kBlockHeaderCheckedBytes}));
}

std::optional<BlockHeader> decodeBlockHeader(const std::byte* p) {
  if (!hasMagic(p, kBlockMagic))
    return std::nullopt;
  if (loadU32(p + 28) != xxh3Low32({p, kBlockHeaderCheckedBytes}))
    return std::nullopt;
  BlockHeader header;
  header.type = loadU16(p + 4);
  header.flags = loadU16(p + 6);
  header.payload_size = loadU64(p + 8);
  header.payload_checksum = loadU64(p + 16);
  return header;
}

void encodeChunkPrefix(const ChunkPrefix& prefix, std::byte* out) {
  storeU64(out, prefix.address);
  storeU32(out + 8, prefix.size);
  storeU32(out + 12, prefix.reserved);
  storeU64(out + 16, prefix.content_hash);
}

ChunkPrefix decodeChunkPrefix(const std::byte* p) {
  return ChunkPrefix{loadU64(p), loadU32(p + 8), loadU32(p + 12), loadU64(p + 16)};
}

void encodeIndexEntry(const IndexEntry& entry, std::byte* out) {
  storeU64(out, entry.block_offset);
  storeU16(out + 8, entry.type);
  storeU16(out + 10, entry.flags);
  storeU32(out + 12, entry.reserved);
  storeU64(out + 16, entry.address);
  storeU64(out + 24, entry.uncompressed_size);
  storeU64(out + 32, entry.block_size);
  storeU64(out + 40, entry.content_hash);
}

IndexEntry decodeIndexEntry(const std::byte* p) {
  IndexEntry entry;
  entry.block_offset = loadU64(p);
  entry.type = loadU16(p + 8);
  entry.flags = loadU16(p + 10);
  entry.reserved = loadU32(p + 12);
  entry.address = loadU64(p + 16);
  entry.uncompressed_size = loadU64(p + 24);
  entry.block_size = loadU64(p + 32);
  entry.content_hash = loadU64(p + 40);
  return entry;
}

void encodeTrailer(const Trailer& trailer, std::byte* out) {
  std::memcpy(out, kTrailerMagic.data(), kTrailerMagic.size());
  storeU64(out + 8, trailer.index_block_offset);
  storeU64(out + 16, trailer.file_size);
  storeU32(out + 24, trailer.flags);
  storeU32(out + 28, xxh3Low32({out, kTrailerCheckedBytes}));
}

std::optional<Trailer> decodeTrailer(const std::byte* p) {
  if (!hasMagic(p, kTrailerMagic))
    return std::nullopt;
  if (loadU32(p + 28) != xxh3Low32({p, kTrailerCheckedBytes}))
    return std::nullopt;
  return Trailer{loadU64(p + 8), loadU64(p + 16), loadU32(p + 24)};
}

} // namespace procsnap::format
