// Fuzzes the archive reader: an input that starts with the archive magic is opened in Strict
// and Salvage mode, verified, and every chunk and module it lists is read; the same input with
// its checksums repaired goes through again, so mutations reach the code behind the checksums.
// Any other input is fed to the JSON document decoders (metadata, stats, module head).
//
// Properties checked besides "no crash, no leak, no huge allocation": errors are one line,
// Salvage opens whatever has a valid file header, a reader whose verify() passes reads every
// chunk and module, and decoded documents re-encode to a fixed point.
#include "common/archive/metadata_codec.h"
#include "common/archive/reader.h"
#include "fuzz/fuzz_support.h"

#include <algorithm>
#include <cstring>

namespace {

using namespace procsnap;

// Chunks and modules read per opened archive: enough for any seed, bounded for speed.
constexpr size_t kMaxReadsPerArchive = 64;

void readEverything(const ArchiveReader& reader, bool must_succeed) {
  std::vector<std::byte> buffer;
  size_t reads = 0;
  for (const ChunkInfo& chunk : reader.chunks()) {
    if (++reads > kMaxReadsPerArchive)
      break;
    buffer.resize(chunk.size);
    auto read = reader.readChunk(chunk, buffer);
    if (!read.ok()) {
      fuzz::checkErrorMessage(read.error().message);
      if (must_succeed)
        fuzz::propertyFailed("verify() passed but a chunk cannot be read", read.error().message);
    }
  }
  for (size_t i = 0; i < reader.modules().size() && i < kMaxReadsPerArchive; ++i) {
    auto sketch = reader.readModule(i);
    if (!sketch.ok()) {
      fuzz::checkErrorMessage(sketch.error().message);
      if (must_succeed)
        fuzz::propertyFailed("verify() passed but a module cannot be read", sketch.error().message);
      continue;
    }
    uint64_t end = 0;
    for (const auto& piece : sketch->pieces) {
      if (piece.offset < end || piece.offset > sketch->file_size ||
          piece.bytes.size() > sketch->file_size - piece.offset)
        fuzz::propertyFailed("module pieces overlap or leave the file", sketch->record.path);
      end = piece.offset + piece.bytes.size();
    }
  }
}

void exerciseArchive(std::span<const std::byte> bytes) {
  auto file = fuzz::MemoryFile::create(bytes);
  if (!file)
    return;
  for (OpenMode mode : {OpenMode::Strict, OpenMode::Salvage}) {
    auto reader = ArchiveReader::open(file->path(), mode);
    if (!reader.ok()) {
      fuzz::checkErrorMessage(reader.error().message);
      // Salvage gives up only on the file header (magic, version, flags, size).
      const bool header_ok = bytes.size() >= format::kFileHeaderSize &&
                             format::loadU32(bytes.data() + 8) == format::kFormatVersion &&
                             format::loadU32(bytes.data() + 12) == 0;
      if (mode == OpenMode::Salvage && header_ok)
        fuzz::propertyFailed("salvage refused an archive with a valid header",
                             reader.error().message);
      continue;
    }
    const VerifyReport report = (*reader)->verify();
    for (const auto& damaged : report.damaged)
      fuzz::checkErrorMessage(damaged.problem.empty() ? "?" : damaged.problem);
    if (report.intact_prefix > report.file_size)
      fuzz::propertyFailed("intact prefix beyond the file", std::to_string(report.intact_prefix));
    readEverything(**reader, mode == OpenMode::Strict && report.ok());
  }
}

template <typename Decode, typename Encode>
void roundTrip(std::string_view json, Decode decode, Encode encode, const char* what) {
  auto decoded = decode(json);
  if (!decoded.ok()) {
    fuzz::checkErrorMessage(decoded.error().message);
    return;
  }
  const std::string once = encode(*decoded);
  auto again = decode(once);
  if (!again.ok())
    fuzz::propertyFailed(what, "re-encoded document does not decode: " + again.error().message);
  if (encode(*again) != once)
    fuzz::propertyFailed(what, "re-encoding is not stable");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  if (size >= format::kFileMagic.size() && format::hasMagic(bytes.data(), format::kFileMagic)) {
    exerciseArchive(bytes);
    std::vector<std::byte> repaired(bytes.begin(), bytes.end());
    if (fuzz::repairChecksums(repaired))
      exerciseArchive(repaired);
    return 0;
  }
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  roundTrip(json, decodeMetadata, encodeMetadata, "metadata");
  roundTrip(json, decodeStatsBlock, encodeStatsBlock, "stats");
  roundTrip(json, decodeModuleHead, encodeModuleHead, "module head");
  return 0;
}
