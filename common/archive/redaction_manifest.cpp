#include "common/archive/redaction_manifest.h"

#include "common/archive/format.h"

#include <cstring>
#include <string>

namespace procsnap {

Sha256Digest redactionHash(std::span<const std::byte> salt, std::span<const std::byte> removed) {
  return hmacSha256(salt, removed);
}

std::vector<std::byte> encodeRedactionManifest(const RedactionManifest& manifest) {
  std::vector<std::byte> out(kRedactionHeaderSize +
                             manifest.entries.size() * size_t{kRedactionEntrySize});
  std::byte* p = out.data();
  format::storeU32(p + 0, kRedactionHeaderSize);
  format::storeU32(p + 4, kRedactionEntrySize);
  format::storeU64(p + 8, manifest.entries.size());
  format::storeU64(p + 16, manifest.omitted_entries);
  format::storeU64(p + 24, manifest.bytes_redacted);
  format::storeU32(p + 32, manifest.pattern_count);
  format::storeU32(p + 36, kRedactionHashHmacSha256);
  format::storeU32(p + 40, manifest.metadata_fields);
  p[44] = manifest.fill; // 45..47 reserved, zero
  std::memcpy(p + 48, manifest.salt.data(), kRedactionSaltSize);
  p += kRedactionHeaderSize;
  for (const RedactionEntry& entry : manifest.entries) {
    format::storeU64(p + 0, entry.location);
    format::storeU32(p + 8, entry.length);
    format::storeU16(p + 12, static_cast<uint16_t>(entry.space));
    format::storeU16(p + 14, 0);
    format::storeU32(p + 16, entry.pattern);
    format::storeU32(p + 20, entry.module_index);
    std::memcpy(p + 24, entry.hash.data(), kSha256DigestSize);
    p += kRedactionEntrySize;
  }
  return out;
}

Result<RedactionManifest> decodeRedactionManifest(std::span<const std::byte> payload) {
  auto corrupt = [](const std::string& why) {
    return Error::make(ErrorCode::Corrupt, "redaction manifest " + why);
  };
  if (payload.size() < kRedactionHeaderSize)
    return corrupt("is too short (" + std::to_string(payload.size()) + " bytes)");
  const std::byte* p = payload.data();
  const uint32_t header_size = format::loadU32(p + 0);
  const uint32_t entry_size = format::loadU32(p + 4);
  const uint64_t count = format::loadU64(p + 8);
  if (header_size < kRedactionHeaderSize || header_size > payload.size())
    return corrupt("has an impossible header size " + std::to_string(header_size));
  if (entry_size < kRedactionEntrySize)
    return corrupt("has an impossible entry size " + std::to_string(entry_size));
  const uint64_t room = payload.size() - header_size;
  if (count > kMaxRedactionEntries || room / entry_size < count || room != count * entry_size)
    return corrupt("declares " + std::to_string(count) + " entries of " +
                   std::to_string(entry_size) + " bytes in " + std::to_string(room) + " bytes");
  const uint32_t algorithm = format::loadU32(p + 36);
  if (algorithm != kRedactionHashHmacSha256)
    return corrupt("uses an unknown hash algorithm " + std::to_string(algorithm));
  RedactionManifest manifest;
  manifest.omitted_entries = format::loadU64(p + 16);
  manifest.bytes_redacted = format::loadU64(p + 24);
  manifest.pattern_count = format::loadU32(p + 32);
  manifest.metadata_fields = format::loadU32(p + 40);
  manifest.fill = p[44];
  std::memcpy(manifest.salt.data(), p + 48, kRedactionSaltSize);
  manifest.entries.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    const std::byte* e = p + header_size + i * entry_size;
    RedactionEntry entry;
    entry.location = format::loadU64(e + 0);
    entry.length = format::loadU32(e + 8);
    const uint16_t space = format::loadU16(e + 12);
    if (space > static_cast<uint16_t>(RedactionSpace::Module))
      return corrupt("entry " + std::to_string(i) + " has an unknown space " +
                     std::to_string(space));
    entry.space = static_cast<RedactionSpace>(space);
    entry.pattern = format::loadU32(e + 16);
    entry.module_index = format::loadU32(e + 20);
    if (entry.pattern >= manifest.pattern_count)
      return corrupt("entry " + std::to_string(i) + " names pattern " +
                     std::to_string(entry.pattern) + " of " +
                     std::to_string(manifest.pattern_count));
    std::memcpy(entry.hash.data(), e + 24, kSha256DigestSize);
    manifest.entries.push_back(entry);
  }
  return manifest;
}

} // namespace procsnap
