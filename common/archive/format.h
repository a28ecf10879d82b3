// The on-disk layout of a .psnap archive, version 1 (docs/FORMAT.md is the specification;
// this header mirrors it). Internal to the archive writer and reader: domain types live in
// snapshot_metadata.h and module_sketch.h, and nothing here may leak into their interfaces.
// Every integer is little-endian; the structs below are never memcpy'd to or from disk, the
// encode/decode functions place each field explicitly.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace procsnap::format {

inline constexpr uint32_t kFormatVersion = 1;

// File header: magic, u32 version, u32 flags.
inline constexpr std::array<unsigned char, 8> kFileMagic = {0x89, 'P', 'S',  'N',
                                                            'A',  'P', '\r', '\n'};
inline constexpr size_t kFileHeaderSize = 16;

// Block header: "PBLK", u16 type, u16 flags, u64 payload_size, u64 payload_checksum,
// u32 reserved, u32 header_checksum.
inline constexpr std::array<unsigned char, 4> kBlockMagic = {'P', 'B', 'L', 'K'};
inline constexpr size_t kBlockHeaderSize = 32;
inline constexpr size_t kBlockHeaderCheckedBytes = 28;     // the header checksum covers these
inline constexpr uint16_t kBlockFlagZstdPayload = 1u << 0; // the whole payload is one frame

enum class BlockType : uint16_t {
  Metadata = 1,
  Module = 2,
  Chunk = 3,
  Stats = 4,
  Index = 5,
  Redaction = 6, // the --redact manifest (redaction_manifest.h); readers may skip it
};

std::string_view blockTypeName(uint16_t type); // "metadata", ..., "unknown"

// CHUNK payload: this plain prefix, then one zstd frame.
inline constexpr size_t kChunkPrefixSize = 24; // u64 address, u32 size, u32 reserved, u64 hash

// INDEX payload: u32 entry_size, u32 reserved, u64 entry_count, then the entries.
inline constexpr size_t kIndexHeaderSize = 16;
inline constexpr size_t kIndexEntrySize = 48;

// Trailer: "PSNAPEND", u64 index_block_offset, u64 file_size, u32 flags, u32 checksum.
inline constexpr std::array<unsigned char, 8> kTrailerMagic = {'P', 'S', 'N', 'A',
                                                               'P', 'E', 'N', 'D'};
inline constexpr size_t kTrailerSize = 32;
inline constexpr size_t kTrailerCheckedBytes = 28;
inline constexpr uint32_t kTrailerFlagPartial = 1u << 0;

// Limits a reader enforces before it allocates or trusts a size from the file.
// A chunk holds about kChunkSize (1 MiB); 64 MiB leaves room for writers with bigger chunks
// while keeping one hostile chunk from asking for gigabytes.
inline constexpr uint64_t kMaxChunkSize = 64ull << 20;
// A METADATA or STATS JSON document: about 1.5 KiB per region, so this allows ~150k regions
// (the kernel's default vm.max_map_count is 65530).
inline constexpr uint64_t kMaxMetadataJsonSize = 256ull << 20;
// The JSON head of a MODULE block: a record and a list of pieces.
inline constexpr uint64_t kMaxModuleJsonSize = 64ull << 20;
// A whole decompressed MODULE payload (an embedded binary with debug info can be large).
inline constexpr uint64_t kMaxModulePayloadSize = 4ull << 30;

// Little-endian field access.
inline uint16_t loadU16(const std::byte* p) {
  return static_cast<uint16_t>(std::to_integer<uint16_t>(p[0]) |
                               (std::to_integer<uint16_t>(p[1]) << 8));
}
inline uint32_t loadU32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | std::to_integer<uint32_t>(p[i]);
  return v;
}
inline uint64_t loadU64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | std::to_integer<uint64_t>(p[i]);
  return v;
}
inline void storeU16(std::byte* p, uint16_t v) {
  for (int i = 0; i < 2; ++i)
    p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void storeU32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void storeU64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<std::byte>(v >> (8 * i));
}

// XXH3-64, seed 0: block payload checksums and chunk content hashes.
uint64_t xxh3(std::span<const std::byte> bytes);
// Low 32 bits of XXH3-64: the block header and trailer checksums.
inline uint32_t xxh3Low32(std::span<const std::byte> bytes) {
  return static_cast<uint32_t>(xxh3(bytes));
}

struct BlockHeader {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint64_t payload_size = 0;
  uint64_t payload_checksum = 0;
};

void encodeBlockHeader(const BlockHeader& header, std::byte* out); // kBlockHeaderSize bytes
// The header at p (kBlockHeaderSize readable bytes) when its magic and checksum hold.
std::optional<BlockHeader> decodeBlockHeader(const std::byte* p);

struct ChunkPrefix {
  uint64_t address = 0;
  uint32_t size = 0;
  uint32_t reserved = 0;
  uint64_t content_hash = 0;
};

void encodeChunkPrefix(const ChunkPrefix& prefix, std::byte* out); // kChunkPrefixSize bytes
ChunkPrefix decodeChunkPrefix(const std::byte* p);

struct IndexEntry {
  uint64_t block_offset = 0;
  uint16_t type = 0;
  uint16_t flags = 0; // the block header's flags
  uint32_t reserved = 0;
  uint64_t address = 0;           // chunks: first address; 0 otherwise
  uint64_t uncompressed_size = 0; // chunks: bytes of memory; others: decompressed payload size
  uint64_t block_size = 0;        // header and payload
  uint64_t content_hash = 0;      // chunks: XXH3-64 of the memory bytes; 0 otherwise
};

void encodeIndexEntry(const IndexEntry& entry, std::byte* out); // kIndexEntrySize bytes
IndexEntry decodeIndexEntry(const std::byte* p);

struct Trailer {
  uint64_t index_block_offset = 0;
  uint64_t file_size = 0;
  uint32_t flags = 0;
};

void encodeTrailer(const Trailer& trailer, std::byte* out); // kTrailerSize bytes
// The trailer at p (kTrailerSize readable bytes) when its magic and checksum hold.
std::optional<Trailer> decodeTrailer(const std::byte* p);

inline bool hasMagic(const std::byte* p, std::span<const unsigned char> magic) {
  return std::memcmp(p, magic.data(), magic.size()) == 0;
}

} // namespace procsnap::format
