#include "tests/support/raw_archive.h"

#include "common/archive/writer.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstring>

namespace procsnap::test {

RawArchive::RawArchive() {
  bytes_.resize(format::kFileHeaderSize);
  std::memcpy(bytes_.data(), format::kFileMagic.data(), format::kFileMagic.size());
  format::storeU32(bytes_.data() + 8, format::kFormatVersion);
}

format::IndexEntry& RawArchive::add(format::BlockType type, uint16_t flags,
                                    std::span<const std::byte> payload,
                                    uint64_t uncompressed_size) {
  format::BlockHeader header{static_cast<uint16_t>(type), flags, payload.size(),
                             format::xxh3(payload)};
  format::IndexEntry entry;
  entry.block_offset = bytes_.size();
  entry.type = header.type;
  entry.flags = flags;
  entry.block_size = format::kBlockHeaderSize + payload.size();
  entry.uncompressed_size = uncompressed_size;
  bytes_.resize(bytes_.size() + format::kBlockHeaderSize);
  format::encodeBlockHeader(header, bytes_.data() + entry.block_offset);
  bytes_.insert(bytes_.end(), payload.begin(), payload.end());
  entries_.push_back(entry);
  return entries_.back();
}

format::IndexEntry& RawArchive::addDocument(format::BlockType type, std::string_view json) {
  std::vector<std::byte> frame(ZSTD_compressBound(json.size()));
  frame.resize(ZSTD_compress(frame.data(), frame.size(), json.data(), json.size(), 3));
  return add(type, format::kBlockFlagZstdPayload, frame, json.size());
}

format::IndexEntry& RawArchive::addChunk(uint64_t address, std::span<const std::byte> memory,
                                         std::span<const std::byte> after_frame) {
  ChunkCompressor compressor(1);
  auto chunk = compressor.compress(0, memory); // any address: the prefix says which
  if (!chunk.ok()) {
    ADD_FAILURE() << "cannot compress a test chunk: " << chunk.error().message;
    return add(format::BlockType::Chunk, 0, {});
  }
  std::vector<std::byte> payload(format::kChunkPrefixSize);
  format::encodeChunkPrefix({address, chunk->size, 0, chunk->content_hash}, payload.data());
  payload.insert(payload.end(), chunk->frame.begin(), chunk->frame.end());
  payload.insert(payload.end(), after_frame.begin(), after_frame.end());
  format::IndexEntry& entry = add(format::BlockType::Chunk, 0, payload, chunk->size);
  entry.address = address;
  entry.content_hash = chunk->content_hash;
  return entry;
}

std::vector<std::byte> RawArchive::finish(std::optional<uint64_t> count_override) {
  std::vector<std::byte> table(format::kIndexHeaderSize +
                               entries_.size() * format::kIndexEntrySize);
  format::storeU32(table.data(), format::kIndexEntrySize);
  format::storeU64(table.data() + 8, count_override.value_or(entries_.size()));
  for (size_t i = 0; i < entries_.size(); ++i)
    format::encodeIndexEntry(entries_[i],
                             table.data() + format::kIndexHeaderSize + i * format::kIndexEntrySize);
  const uint64_t index_offset = bytes_.size();
  format::BlockHeader header{static_cast<uint16_t>(format::BlockType::Index), 0, table.size(),
                             format::xxh3(table)};
  bytes_.resize(bytes_.size() + format::kBlockHeaderSize);
  format::encodeBlockHeader(header, bytes_.data() + index_offset);
  bytes_.insert(bytes_.end(), table.begin(), table.end());
  const size_t trailer_at = bytes_.size();
  bytes_.resize(trailer_at + format::kTrailerSize);
  format::encodeTrailer({index_offset, bytes_.size(), 0}, bytes_.data() + trailer_at);
  return bytes_;
}

} // namespace procsnap::test
