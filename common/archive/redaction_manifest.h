// What `procsnap-capture --redact` removed: where, how long, which pattern (by index, never
// its text) and a keyed hash of the removed bytes. Stored as a REDACTION block (type 6,
// docs/FORMAT.md); domain type here, byte layout in redaction_manifest.cpp.
//
// The hash is HMAC-SHA-256 keyed with a random per-archive salt stored in the manifest:
// someone who holds the secret recomputes redactionHash(salt, secret) and compares, while
// the archive alone does not reveal the secret. The salt is in the archive, so a short or
// guessable secret can still be brute-forced from its hash; the salt only defeats
// precomputed tables and linking the same secret across archives (docs/RELIABILITY.md).
#pragma once

#include "common/util/result.h"
#include "common/util/sha256.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace procsnap {

inline constexpr size_t kRedactionSaltSize = 32;
// A manifest lists at most this many matches (56 bytes each: 56 MiB); further matches are
// still overwritten and counted in omitted_entries. A one-byte pattern could otherwise make
// the manifest larger than the memory it describes.
inline constexpr uint64_t kMaxRedactionEntries = 1ull << 20;
// Layout sizes (docs/FORMAT.md "REDACTION block").
inline constexpr uint32_t kRedactionHeaderSize = 80;
inline constexpr uint32_t kRedactionEntrySize = 56;
inline constexpr uint32_t kRedactionHashHmacSha256 = 1;
// A reader refuses a decompressed manifest larger than this (the entry limit at up to 4x
// today's entry size, for later versions with longer entries).
inline constexpr uint64_t kMaxRedactionPayloadSize =
    kRedactionHeaderSize + kMaxRedactionEntries * kRedactionEntrySize * 4;

enum class RedactionSpace : uint16_t {
  Memory = 0, // location is a virtual address of the target
  Module = 1, // location is a file offset in the module metadata.modules[module_index]
};

struct RedactionEntry {
  RedactionSpace space = RedactionSpace::Memory;
  uint64_t location = 0;
  uint32_t length = 0;
  uint32_t pattern = 0;      // index of the --redact pattern, in command-line order
  uint32_t module_index = 0; // RedactionSpace::Module only
  Sha256Digest hash{};       // redactionHash(salt, the removed bytes)
};

struct RedactionManifest {
  uint32_t pattern_count = 0;
  std::byte fill{0};
  std::array<std::byte, kRedactionSaltSize> salt{};
  uint64_t bytes_redacted = 0;  // distinct bytes overwritten (memory and modules)
  uint64_t omitted_entries = 0; // matches overwritten but not listed (kMaxRedactionEntries)
  uint32_t metadata_fields = 0; // metadata strings (command line, environment, paths) changed
  std::vector<RedactionEntry> entries; // memory entries by address, then module entries
};

Sha256Digest redactionHash(std::span<const std::byte> salt, std::span<const std::byte> removed);

// The uncompressed payload of a REDACTION block.
std::vector<std::byte> encodeRedactionManifest(const RedactionManifest& manifest);
// Errors: ErrorCode::Corrupt with a one-line message; sizes are checked before use.
Result<RedactionManifest> decodeRedactionManifest(std::span<const std::byte> payload);

} // namespace procsnap
