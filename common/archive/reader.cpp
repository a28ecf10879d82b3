#include "common/archive/reader.h"

#include "common/archive/format.h"
#include "common/archive/metadata_codec.h"

#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap {

namespace {

using format::BlockType;

// A zstd frame may ask for a window of up to 2^27 bytes by default; ours use at most a few
// MiB. Refusing bigger windows keeps a hostile frame from making the decoder allocate much.
constexpr int kMaxWindowLog = 24;
// Output grows in steps while a document decompresses, so a frame that declares a big size
// but holds little never gets that much memory up front.
constexpr uint64_t kInitialDocumentBuffer = 1u << 20;
// verify() reports progress about this often.
constexpr uint64_t kProgressInterval = 64ull << 20;

std::string hex(uint64_t value) {
  char buffer[2 + 16 + 1];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIx64, value);
  return buffer;
}

std::string typeName(uint16_t type) {
  return std::string(format::blockTypeName(type));
}

Error corrupt(std::string message) {
  return Error::make(ErrorCode::Corrupt, std::move(message));
}

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* dctx) const { ZSTD_freeDCtx(dctx); }
};

// One decompression context per thread, so const reads can run in parallel.
ZSTD_DCtx* threadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx = [] {
    std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
    if (ctx)
      ZSTD_DCtx_setParameter(ctx.get(), ZSTD_d_windowLogMax, kMaxWindowLog);
    return ctx;
  }();
  return dctx.get();
}

// Decompresses one frame piece by piece into caller-chosen buffers.
class FrameStream final {
public:
  FrameStream(std::span<const std::byte> frame, std::string what)
      : in_{frame.data(), frame.size(), 0}, what_(std::move(what)) {}

  // The size the frame declares (required in version 1), bounded by limit.
  Result<uint64_t> declaredSize(uint64_t limit) const {
    const unsigned long long size = ZSTD_getFrameContentSize(in_.src, in_.size);
    if (size == ZSTD_CONTENTSIZE_ERROR)
      return corrupt(what_ + ": payload is not a zstd frame");
    if (size == ZSTD_CONTENTSIZE_UNKNOWN)
      return corrupt(what_ + ": zstd frame does not declare its size");
    if (size > limit)
      return corrupt(what_ + ": zstd frame declares " + std::to_string(size) +
                     " bytes, more than the limit of " + std::to_string(limit));
    return static_cast<uint64_t>(size);
  }

  Result<void> start() {
    dctx_ = threadDCtx();
    if (!dctx_)
      return Error::make(ErrorCode::Generic, "cannot create a zstd decompression context");
    ZSTD_DCtx_reset(dctx_, ZSTD_reset_session_only);
    return success();
  }

  Result<void> readExactly(std::byte* out, size_t size) {
    ZSTD_outBuffer buffer{out, size, 0};
    while (buffer.pos < buffer.size) {
      if (ended_)
        return corrupt(what_ + ": zstd frame ends early");
      const size_t before_in = in_.pos;
      const size_t before_out = buffer.pos;
      const size_t rc = ZSTD_decompressStream(dctx_, &buffer, &in_);
      if (ZSTD_isError(rc))
        return corrupt(what_ + ": cannot decompress: " + ZSTD_getErrorName(rc));
      ended_ = rc == 0;
      if (!ended_ && in_.pos == before_in && buffer.pos == before_out)
        return corrupt(what_ + ": zstd frame is cut short");
    }
    return success();
  }

  // After everything declared was read: the frame must end, and end the payload.
  Result<void> finish() {
    while (!ended_) {
      std::byte spare;
      ZSTD_outBuffer buffer{&spare, 1, 0};
      const size_t before_in = in_.pos;
      const size_t rc = ZSTD_decompressStream(dctx_, &buffer, &in_);
      if (ZSTD_isError(rc))
        return corrupt(what_ + ": cannot decompress: " + ZSTD_getErrorName(rc));
      if (buffer.pos != 0)
        return corrupt(what_ + ": zstd frame holds more than it declares");
      ended_ = rc == 0;
      if (!ended_ && in_.pos == before_in)
        return corrupt(what_ + ": zstd frame is cut short");
    }
    if (in_.pos != in_.size)
      return corrupt(what_ + ": " + std::to_string(in_.size - in_.pos) +
                     " stray bytes after the zstd frame");
    return success();
  }

private:
  ZSTD_inBuffer in_;
  std::string what_;
  ZSTD_DCtx* dctx_ = nullptr;
  bool ended_ = false;
};

// Decompresses a whole single-frame payload. expected_size is the index's word, 0 if none.
Result<std::string> decompressDocument(std::span<const std::byte> frame, uint64_t limit,
                                       uint64_t expected_size, const std::string& what) {
  FrameStream stream(frame, what);
  auto declared = stream.declaredSize(limit);
  PROCSNAP_TRY(declared);
  if (expected_size != 0 && *declared != expected_size)
    return corrupt(what + ": zstd frame declares " + std::to_string(*declared) +
                   " bytes but the index says " + std::to_string(expected_size));
  PROCSNAP_TRY(stream.start());
  std::string out;
  while (out.size() < *declared) {
    const uint64_t step = std::min<uint64_t>(
        *declared - out.size(), std::max<uint64_t>(out.size(), kInitialDocumentBuffer));
    const size_t old = out.size();
    out.resize(old + step);
    PROCSNAP_TRY(stream.readExactly(reinterpret_cast<std::byte*>(out.data()) + old, step));
  }
  PROCSNAP_TRY(stream.finish());
  return out;
}

// For verify(): decompresses and decodes the one JSON document of a METADATA or STATS block,
// recording its size in entry. Returns what is wrong with it, or nullopt.
template <typename Decode>
std::optional<std::string> checkDocument(std::span<const std::byte> frame, const std::string& what,
                                         format::IndexEntry& entry, Decode decode) {
  auto json = decompressDocument(frame, format::kMaxMetadataJsonSize, 0, what);
  if (!json.ok())
    return json.error().message;
  entry.uncompressed_size = json->size();
  auto decoded = decode(*json);
  if (!decoded.ok())
    return decoded.error().message;
  return std::nullopt;
}

struct Mapping {
  const std::byte* data = nullptr;
  uint64_t size = 0;
};

} // namespace

// ---------------------------------------------------------------------------------------

struct ArchiveReader::State {
  std::string path;
  Mapping map;
  uint32_t version = 0;
  bool complete = false;
  bool salvaged = false;
  SnapshotMetadata metadata;
  std::vector<ChunkInfo> chunks;
  std::vector<ModuleInfo> modules;
  std::optional<RedactionManifest> redactions;

  ~State() {
    if (map.data)
      ::munmap(const_cast<std::byte*>(map.data), map.size);
  }

  std::span<const std::byte> bytes(uint64_t offset, uint64_t size) const {
    return {map.data + offset, static_cast<size_t>(size)};
  }

  std::string at(uint64_t offset) const { return "block at offset " + hex(offset); }

  // The header of the block at offset, when the block lies inside the file and its header
  // checksum holds.
  Result<format::BlockHeader> blockHeader(uint64_t offset) const {
    if (offset > map.size || map.size - offset < format::kBlockHeaderSize)
      return corrupt(at(offset) + " lies outside the file");
    auto header = format::decodeBlockHeader(map.data + offset);
    if (!header)
      return corrupt(at(offset) + ": bad block header (magic or checksum)");
    if (header->payload_size > map.size - offset - format::kBlockHeaderSize)
      return corrupt(at(offset) + " runs past the end of the file");
    return *header;
  }

  // The payload of a block of the given type, its checksum verified.
  Result<std::span<const std::byte>> payload(uint64_t offset, BlockType type,
                                             uint64_t block_size) const {
    auto header = blockHeader(offset);
    PROCSNAP_TRY(header);
    if (header->type != static_cast<uint16_t>(type))
      return corrupt(at(offset) + " is a " + typeName(header->type) + " block, expected " +
                     typeName(static_cast<uint16_t>(type)));
    if (block_size != 0 && header->payload_size + format::kBlockHeaderSize != block_size)
      return corrupt(at(offset) + ": size differs from the index");
    auto data = bytes(offset + format::kBlockHeaderSize, header->payload_size);
    if (format::xxh3(data) != header->payload_checksum)
      return corrupt(at(offset) + ": " + typeName(header->type) + " payload checksum mismatch");
    return data;
  }

  Result<ModuleInfo> moduleInfo(uint64_t offset, std::span<const std::byte> payload,
                                uint64_t expected_size) const {
    const std::string what = "module " + at(offset);
    FrameStream stream(payload, what);
    auto declared = stream.declaredSize(format::kMaxModulePayloadSize);
    PROCSNAP_TRY(declared);
    if (expected_size != 0 && *declared != expected_size)
      return corrupt(what + ": size differs from the index");
    PROCSNAP_TRY(stream.start());
    std::byte length_bytes[4];
    if (*declared < 4)
      return corrupt(what + ": too short");
    PROCSNAP_TRY(stream.readExactly(length_bytes, 4));
    const uint32_t json_length = format::loadU32(length_bytes);
    if (json_length > format::kMaxModuleJsonSize || json_length > *declared - 4)
      return corrupt(what + ": json length " + std::to_string(json_length) + " is impossible");
    std::string json(json_length, '\0');
    PROCSNAP_TRY(stream.readExactly(reinterpret_cast<std::byte*>(json.data()), json_length));
    auto head = decodeModuleHead(json);
    PROCSNAP_TRY(head);
    uint64_t pieces = 0;
    for (const auto& piece : head->pieces)
      pieces += piece.second; // pieces are disjoint inside file_size: no overflow
    if (pieces != *declared - 4 - json_length)
      return corrupt(what + ": pieces do not add up to the payload");
    return ModuleInfo{std::move(head->record), head->file_size, offset};
  }

  Result<StatsBlock> statsBlock(uint64_t offset, std::span<const std::byte> payload,
                                uint64_t expected_size) const {
    auto json = decompressDocument(payload, format::kMaxMetadataJsonSize, expected_size,
                                   "stats " + at(offset));
    PROCSNAP_TRY(json);
    return decodeStatsBlock(*json);
  }

  Result<SnapshotMetadata> metadataBlock(uint64_t offset, std::span<const std::byte> payload,
                                         uint64_t expected_size) const {
    auto json = decompressDocument(payload, format::kMaxMetadataJsonSize, expected_size,
                                   "metadata " + at(offset));
    PROCSNAP_TRY(json);
    return decodeMetadata(*json);
  }

  Result<RedactionManifest> redactionBlock(uint64_t offset, std::span<const std::byte> payload,
                                           uint64_t expected_size) const {
    auto bytes = decompressDocument(payload, kMaxRedactionPayloadSize, expected_size,
                                    "redaction manifest " + at(offset));
    PROCSNAP_TRY(bytes);
    return decodeRedactionManifest(
        {reinterpret_cast<const std::byte*>(bytes->data()), bytes->size()});
  }

  void applyStats(const StatsBlock& block) {
    metadata.stats = block.stats;
    markPartial(block.partial, block.partial_reason);
  }

  void markPartial(bool partial, const std::string& reason) {
    if (!partial)
      return;
    metadata.partial = true;
    if (metadata.partial_reason.empty())
      metadata.partial_reason = reason.empty() ? "the capture was marked partial" : reason;
  }

  Result<void> openFromTrailer();
  Error missingTrailer() const;
  void salvage();
  Result<void> checkChunkOrder();
};

namespace {

// One step of a walk over the blocks of a file, from the end of the file header.
struct WalkStep {
  enum Kind { Block, Damaged, Trailer } kind = Block;
  uint64_t offset = 0;
  uint64_t size = 0; // bytes this step covers
  format::BlockHeader header;
  bool payload_ok = false; // Block: the payload checksum holds
  std::string problem;     // Damaged, or Block with a bad payload
};

// Walks every block; where a block header is damaged it resyncs on the next "PBLK" whose
// header checksum holds. visit returns false to stop.
template <typename Visit> void walkBlocks(const Mapping& map, Visit visit) {
  const uint64_t size = map.size;
  auto validHeaderAt = [&](uint64_t pos) {
    return size - pos >= format::kBlockHeaderSize && format::decodeBlockHeader(map.data + pos);
  };
  auto nextHeader = [&](uint64_t from) {
    while (from < size) {
      const void* hit = ::memmem(map.data + from, size - from, format::kBlockMagic.data(),
                                 format::kBlockMagic.size());
      if (!hit)
        return size;
      const auto pos = static_cast<uint64_t>(static_cast<const std::byte*>(hit) - map.data);
      if (validHeaderAt(pos))
        return pos;
      from = pos + 1;
    }
    return size;
  };

  uint64_t pos = format::kFileHeaderSize;
  while (pos < size) {
    WalkStep step;
    step.offset = pos;
    const uint64_t left = size - pos;
    auto header =
        left >= format::kBlockHeaderSize ? format::decodeBlockHeader(map.data + pos) : std::nullopt;
    if (header && header->payload_size <= left - format::kBlockHeaderSize) {
      step.kind = WalkStep::Block;
      step.header = *header;
      step.size = format::kBlockHeaderSize + header->payload_size;
      step.payload_ok =
          format::xxh3({map.data + pos + format::kBlockHeaderSize,
                        static_cast<size_t>(header->payload_size)}) == header->payload_checksum;
      if (!step.payload_ok)
        step.problem = typeName(header->type) + " payload checksum mismatch";
      pos += step.size; // a header whose checksum holds tells where the next block starts
    } else if (left >= format::kTrailerSize && format::decodeTrailer(map.data + pos)) {
      step.kind = WalkStep::Trailer;
      step.size = format::kTrailerSize;
      pos += step.size;
    } else {
      step.kind = WalkStep::Damaged;
      const uint64_t next = nextHeader(pos + 1);
      step.size = next - pos;
      if (header)
        step.problem = typeName(header->type) + " block runs past the end of the file (" +
                       std::to_string(header->payload_size) + " byte payload, " +
                       std::to_string(left - format::kBlockHeaderSize) + " bytes left)";
      else if (next == size && left < format::kBlockHeaderSize)
        step.problem = "file ends inside a block header or the trailer";
      else
        step.problem = "unrecognized bytes (no valid block header)";
      pos = next;
    }
    if (!visit(step))
      return;
  }
}

} // namespace

Error ArchiveReader::State::missingTrailer() const {
  // Tell a file that stops early (the writer died, a copy was cut) from damaged bytes, by
  // following block headers only: cheap even for a big archive.
  const uint64_t size = map.size;
  uint64_t pos = format::kFileHeaderSize;
  while (size - pos >= format::kBlockHeaderSize) {
    auto header = format::decodeBlockHeader(map.data + pos);
    if (!header) {
      if (size - pos == format::kTrailerSize &&
          format::hasMagic(map.data + pos, format::kTrailerMagic))
        return corrupt(path + ": archive trailer is damaged (checksum mismatch); open with --"
                              "salvage to recover the intact blocks");
      if (format::decodeTrailer(map.data + pos))
        return corrupt(path + ": archive has " + std::to_string(size - pos - format::kTrailerSize) +
                       " unexpected bytes after its trailer at offset " + hex(pos));
      return corrupt(path + ": archive is damaged at offset " + hex(pos) +
                     " (bad block header); open with --salvage to recover the intact blocks");
    }
    if (header->payload_size > size - pos - format::kBlockHeaderSize)
      break;
    pos += format::kBlockHeaderSize + header->payload_size;
  }
  return Error::make(ErrorCode::Truncated,
                     path + ": archive is truncated: " + std::to_string(pos) + " of " +
                         std::to_string(size) +
                         " bytes intact; open with --salvage to recover them");
}

Result<void> ArchiveReader::State::checkChunkOrder() {
  auto byAddress = [](const ChunkInfo& a, const ChunkInfo& b) { return a.address < b.address; };
  if (!std::is_sorted(chunks.begin(), chunks.end(), byAddress))
    std::sort(chunks.begin(), chunks.end(), byAddress);
  for (size_t i = 1; i < chunks.size(); ++i)
    if (chunks[i].address < chunks[i - 1].address + chunks[i - 1].size)
      return corrupt(path + ": index lists overlapping chunks at " + hex(chunks[i - 1].address) +
                     " and " + hex(chunks[i].address));
  return success();
}

Result<void> ArchiveReader::State::openFromTrailer() {
  const uint64_t size = map.size;
  if (size < format::kFileHeaderSize + format::kTrailerSize)
    return missingTrailer();
  const uint64_t trailer_offset = size - format::kTrailerSize;
  auto trailer = format::decodeTrailer(map.data + trailer_offset);
  if (!trailer)
    return missingTrailer();
  if (trailer->file_size != size)
    return corrupt(path + ": trailer records a file size of " + std::to_string(trailer->file_size) +
                   " bytes but the file has " + std::to_string(size));
  const uint64_t index_offset = trailer->index_block_offset;
  if (index_offset < format::kFileHeaderSize || index_offset > trailer_offset ||
      trailer_offset - index_offset < format::kBlockHeaderSize)
    return corrupt(path + ": trailer points to an index at " + hex(index_offset) +
                   " outside the file");
  auto index = payload(index_offset, BlockType::Index, trailer_offset - index_offset);
  if (!index.ok())
    return corrupt(path + ": index " + index.error().message);

  // Index header and entries; every size is checked before it is used.
  const std::span<const std::byte> table = *index;
  if (table.size() < format::kIndexHeaderSize)
    return corrupt(path + ": index block is too short");
  const uint32_t entry_size = format::loadU32(table.data());
  const uint64_t count = format::loadU64(table.data() + 8);
  const uint64_t entries_bytes = table.size() - format::kIndexHeaderSize;
  if (entry_size < format::kIndexEntrySize || entries_bytes / entry_size < count ||
      count * entry_size != entries_bytes)
    return corrupt(path + ": index declares " + std::to_string(count) + " entries of " +
                   std::to_string(entry_size) + " bytes in " + std::to_string(entries_bytes) +
                   " bytes");

  std::optional<format::IndexEntry> metadata_entry;
  std::optional<format::IndexEntry> stats_entry;
  std::vector<format::IndexEntry> module_entries;
  std::optional<format::IndexEntry> redaction_entry;
  chunks.reserve(static_cast<size_t>(count));
  uint64_t expected_offset = format::kFileHeaderSize; // blocks are contiguous
  for (uint64_t i = 0; i < count; ++i) {
    const auto e =
        format::decodeIndexEntry(table.data() + format::kIndexHeaderSize + i * entry_size);
    auto bad = [&](const std::string& why) {
      return corrupt(path + ": index entry " + std::to_string(i) + " (" + typeName(e.type) +
                     " block at " + hex(e.block_offset) + ") " + why);
    };
    if (e.block_offset != expected_offset)
      return bad("does not start where the previous block ends (" + hex(expected_offset) + ")");
    if (e.block_size < format::kBlockHeaderSize || e.block_size > index_offset - e.block_offset)
      return bad("has an impossible size " + std::to_string(e.block_size));
    expected_offset = e.block_offset + e.block_size;
    switch (static_cast<BlockType>(e.type)) {
    case BlockType::Chunk: {
      if (e.block_size <= format::kBlockHeaderSize + format::kChunkPrefixSize)
        return bad("is too small for a chunk");
      if (e.uncompressed_size == 0 || e.uncompressed_size > format::kMaxChunkSize)
        return bad("holds " + std::to_string(e.uncompressed_size) + " bytes, outside 1.." +
                   std::to_string(format::kMaxChunkSize));
      if (e.address + e.uncompressed_size < e.address)
        return bad("runs past the end of the address space");
      chunks.push_back(ChunkInfo{
          e.address, static_cast<uint32_t>(e.uncompressed_size), e.content_hash, e.block_offset,
          e.block_size - format::kBlockHeaderSize - format::kChunkPrefixSize});
      break;
    }
    case BlockType::Metadata:
      if (e.uncompressed_size > format::kMaxMetadataJsonSize)
        return bad("is larger than the limit for metadata");
      if (!metadata_entry)
        metadata_entry = e;
      break;
    case BlockType::Stats:
      if (e.uncompressed_size > format::kMaxMetadataJsonSize)
        return bad("is larger than the limit for stats");
      stats_entry = e; // the last one wins
      break;
    case BlockType::Module:
      if (e.uncompressed_size > format::kMaxModulePayloadSize)
        return bad("is larger than the limit for a module");
      module_entries.push_back(e);
      break;
    case BlockType::Redaction:
      if (e.uncompressed_size > kMaxRedactionPayloadSize)
        return bad("is larger than the limit for a redaction manifest");
      if (!redaction_entry)
        redaction_entry = e;
      break;
    default:
      break; // unknown and reserved types are skipped
    }
  }
  if (expected_offset != index_offset)
    return corrupt(path + ": index does not account for the bytes before it (" +
                   hex(expected_offset) + " versus " + hex(index_offset) + ")");
  PROCSNAP_TRY(checkChunkOrder());

  if (!metadata_entry)
    return corrupt(path + ": archive has no metadata block");
  {
    auto data =
        payload(metadata_entry->block_offset, BlockType::Metadata, metadata_entry->block_size);
    if (!data.ok())
      return corrupt(path + ": metadata " + data.error().message);
    auto decoded =
        metadataBlock(metadata_entry->block_offset, *data, metadata_entry->uncompressed_size);
    if (!decoded.ok())
      return Error::make(decoded.error().code, path + ": " + decoded.error().message);
    metadata = std::move(*decoded);
  }
  modules.reserve(module_entries.size());
  for (const auto& e : module_entries) {
    auto data = payload(e.block_offset, BlockType::Module, e.block_size);
    if (!data.ok())
      return corrupt(path + ": module " + data.error().message);
    auto info = moduleInfo(e.block_offset, *data, e.uncompressed_size);
    if (!info.ok())
      return Error::make(info.error().code, path + ": " + info.error().message);
    modules.push_back(std::move(*info));
  }
  if (stats_entry) {
    auto data = payload(stats_entry->block_offset, BlockType::Stats, stats_entry->block_size);
    if (!data.ok())
      return corrupt(path + ": stats " + data.error().message);
    auto block = statsBlock(stats_entry->block_offset, *data, stats_entry->uncompressed_size);
    if (!block.ok())
      return Error::make(block.error().code, path + ": " + block.error().message);
    applyStats(*block);
  }
  if (redaction_entry) {
    auto data =
        payload(redaction_entry->block_offset, BlockType::Redaction, redaction_entry->block_size);
    if (!data.ok())
      return corrupt(path + ": redaction manifest " + data.error().message);
    auto manifest =
        redactionBlock(redaction_entry->block_offset, *data, redaction_entry->uncompressed_size);
    if (!manifest.ok())
      return Error::make(manifest.error().code, path + ": " + manifest.error().message);
    redactions = std::move(*manifest);
  }
  markPartial(trailer->flags & format::kTrailerFlagPartial, "");
  complete = true;
  return success();
}

void ArchiveReader::State::salvage() {
  chunks.clear();
  modules.clear();
  redactions.reset();
  metadata = SnapshotMetadata{};
  bool have_metadata = false;
  std::optional<StatsBlock> stats;
  uint64_t intact_blocks = 0;
  uint64_t damaged_bytes = 0;
  uint64_t intact_prefix = 0;
  bool damaged_seen = false;
  std::vector<std::string> problems;
  constexpr size_t kMaxListedProblems = 20; // the first few say enough

  auto damage = [&](uint64_t offset, uint64_t bytes, const std::string& problem) {
    if (!damaged_seen)
      intact_prefix = offset;
    damaged_seen = true;
    damaged_bytes += bytes;
    if (problems.size() < kMaxListedProblems)
      problems.push_back("salvage: " + hex(offset) + ": " + problem);
  };

  walkBlocks(map, [&](const WalkStep& step) {
    if (step.kind == WalkStep::Trailer)
      return false;
    if (step.kind == WalkStep::Damaged || !step.payload_ok) {
      damage(step.offset, step.size, step.problem);
      return true;
    }
    const auto data = bytes(step.offset + format::kBlockHeaderSize, step.header.payload_size);
    std::optional<Error> problem;
    switch (static_cast<BlockType>(step.header.type)) {
    case BlockType::Chunk: {
      if (data.size() <= format::kChunkPrefixSize) {
        problem = corrupt("chunk block too small");
        break;
      }
      const auto prefix = format::decodeChunkPrefix(data.data());
      if (prefix.size == 0 || prefix.size > format::kMaxChunkSize ||
          prefix.address + prefix.size < prefix.address) {
        problem = corrupt("chunk has an impossible size");
        break;
      }
      chunks.push_back(ChunkInfo{prefix.address, prefix.size, prefix.content_hash, step.offset,
                                 data.size() - format::kChunkPrefixSize});
      break;
    }
    case BlockType::Metadata:
      if (!have_metadata) {
        auto decoded = metadataBlock(step.offset, data, 0);
        if (decoded.ok()) {
          metadata = std::move(*decoded);
          have_metadata = true;
        } else {
          problem = decoded.error();
        }
      }
      break;
    case BlockType::Module: {
      auto info = moduleInfo(step.offset, data, 0);
      if (info.ok())
        modules.push_back(std::move(*info));
      else
        problem = info.error();
      break;
    }
    case BlockType::Stats: {
      auto block = statsBlock(step.offset, data, 0);
      if (block.ok())
        stats = std::move(*block);
      else
        problem = block.error();
      break;
    }
    case BlockType::Redaction: {
      auto manifest = redactionBlock(step.offset, data, 0);
      if (!manifest.ok())
        problem = manifest.error();
      else if (!redactions)
        redactions = std::move(*manifest);
      break;
    }
    default:
      break; // the index is rebuilt from the blocks; unknown types are skipped
    }
    if (problem)
      damage(step.offset, step.size, problem->message);
    else
      ++intact_blocks;
    return true;
  });
  if (!damaged_seen)
    intact_prefix = map.size;

  // Keep the first of any overlapping chunks (only damage can make them overlap).
  std::stable_sort(chunks.begin(), chunks.end(),
                   [](const ChunkInfo& a, const ChunkInfo& b) { return a.address < b.address; });
  std::vector<ChunkInfo> kept;
  kept.reserve(chunks.size());
  for (const auto& chunk : chunks) {
    if (!kept.empty() && chunk.address < kept.back().address + kept.back().size) {
      if (problems.size() < kMaxListedProblems)
        problems.push_back("salvage: chunk at " + hex(chunk.address) +
                           " overlaps another and was dropped");
      continue;
    }
    kept.push_back(chunk);
  }
  chunks = std::move(kept);

  if (stats)
    applyStats(*stats);
  if (!have_metadata)
    metadata.warnings.push_back("salvage: no intact metadata block; regions, threads and "
                                "modules are unknown");
  metadata.warnings.push_back(
      "salvage: archive opened by scanning: " + std::to_string(intact_blocks) + " intact blocks, " +
      std::to_string(damaged_bytes) + " damaged bytes, first " + std::to_string(intact_prefix) +
      " of " + std::to_string(map.size) + " bytes intact");
  for (auto& problem : problems)
    metadata.warnings.push_back(std::move(problem));
  markPartial(true, "archive salvaged: incomplete or damaged");
  salvaged = true;
  complete = false;
}

// ---------------------------------------------------------------------------------------

ArchiveReader::ArchiveReader() : state_(std::make_unique<State>()) {}
ArchiveReader::~ArchiveReader() = default;

Result<std::unique_ptr<ArchiveReader>> ArchiveReader::open(const std::string& path, OpenMode mode) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const ErrorCode code = error == ENOENT   ? ErrorCode::NotFound
                           : error == EACCES ? ErrorCode::PermissionDenied
                                             : ErrorCode::Io;
    return Error::make(code, "cannot open " + path + ": " + std::strerror(error));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error::make(ErrorCode::InvalidArgument, path + " is not a regular file");
  }
  std::unique_ptr<ArchiveReader> reader(new ArchiveReader());
  State& s = *reader->state_;
  s.path = path;
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return Error::make(ErrorCode::Malformed, path + ": empty file, not a procsnap archive");
  }
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd); // the mapping keeps the file
  if (data == MAP_FAILED)
    return Error::make(ErrorCode::Io, "cannot map " + path + ": " + std::strerror(map_error));
  s.map = Mapping{static_cast<const std::byte*>(data), size};

  const size_t magic_bytes = std::min<uint64_t>(size, format::kFileMagic.size());
  if (std::memcmp(s.map.data, format::kFileMagic.data(), magic_bytes) != 0)
    return Error::make(ErrorCode::Malformed, path + ": not a procsnap archive");
  if (size < format::kFileHeaderSize)
    return Error::make(ErrorCode::Truncated, path + ": archive is truncated: 0 of " +
                                                 std::to_string(size) +
                                                 " bytes intact (inside the file header)");
  s.version = format::loadU32(s.map.data + 8);
  if (s.version != format::kFormatVersion)
    return Error::make(ErrorCode::Unsupported,
                       path + ": unsupported archive format version " + std::to_string(s.version) +
                           " (this build reads " + std::to_string(format::kFormatVersion) + ")");
  const uint32_t flags = format::loadU32(s.map.data + 12);
  if (flags != 0)
    return Error::make(ErrorCode::Unsupported,
                       path + ": archive header has unknown flags " + hex(flags));

  auto strict = s.openFromTrailer();
  if (!strict.ok()) {
    if (mode != OpenMode::Salvage)
      return std::move(strict).takeError();
    s.salvage();
  }
  return reader;
}

uint32_t ArchiveReader::formatVersion() const {
  return state_->version;
}
bool ArchiveReader::complete() const {
  return state_->complete;
}
bool ArchiveReader::salvaged() const {
  return state_->salvaged;
}
uint64_t ArchiveReader::fileSize() const {
  return state_->map.size;
}
const SnapshotMetadata& ArchiveReader::metadata() const {
  return state_->metadata;
}
const std::vector<ChunkInfo>& ArchiveReader::chunks() const {
  return state_->chunks;
}
const RedactionManifest* ArchiveReader::redactions() const {
  return state_->redactions ? &*state_->redactions : nullptr;
}

const std::vector<ModuleInfo>& ArchiveReader::modules() const {
  return state_->modules;
}

const ChunkInfo* ArchiveReader::findChunk(uint64_t address) const {
  const auto& chunks = state_->chunks;
  auto it = std::upper_bound(chunks.begin(), chunks.end(), address,
                             [](uint64_t a, const ChunkInfo& c) { return a < c.address; });
  if (it == chunks.begin())
    return nullptr;
  --it;
  return address - it->address < it->size ? &*it : nullptr;
}

namespace {

// A command that reads every chunk of a multi-GiB archive would otherwise keep every page of
// the mapping it touched in its RSS; the kernel refaults them from the page cache if needed.
void releaseMappedPages(std::span<const std::byte> bytes) {
  const auto page =
      static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE) > 0 ? ::sysconf(_SC_PAGESIZE) : 4096);
  const auto begin = (reinterpret_cast<uintptr_t>(bytes.data()) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size()) & ~(page - 1);
  if (end > begin)
    (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED); // advisory only
}

} // namespace

Result<void> ArchiveReader::readChunk(const ChunkInfo& chunk, std::span<std::byte> out) const {
  const State& s = *state_;
  const std::string what = "chunk at " + hex(chunk.address);
  if (out.size() < chunk.size)
    return Error::make(ErrorCode::InvalidArgument,
                       what + ": output buffer holds " + std::to_string(out.size()) +
                           " bytes, the chunk " + std::to_string(chunk.size));
  auto header = s.blockHeader(chunk.block_offset);
  if (!header.ok())
    return corrupt(what + ": " + header.error().message);
  if (header->type != static_cast<uint16_t>(BlockType::Chunk) ||
      header->payload_size != format::kChunkPrefixSize + chunk.stored_size)
    return corrupt(what + ": " + s.at(chunk.block_offset) + " does not hold this chunk");
  const auto payload = s.bytes(chunk.block_offset + format::kBlockHeaderSize, header->payload_size);
  const auto prefix = format::decodeChunkPrefix(payload.data());
  if (prefix.address != chunk.address || prefix.size != chunk.size ||
      prefix.content_hash != chunk.content_hash)
    return corrupt(what + ": block prefix disagrees with the index");
  const auto frame = payload.subspan(format::kChunkPrefixSize);
  if (ZSTD_getFrameContentSize(frame.data(), frame.size()) != chunk.size)
    return corrupt(what + ": zstd frame does not declare the chunk's size");
  // ZSTD_decompressDCtx would also decompress (or skip) frames after the first: the format
  // holds exactly one frame per chunk, so anything after it is damage or smuggled bytes.
  const size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size))
    return corrupt(what + ": cannot decompress: " + ZSTD_getErrorName(frame_size));
  if (frame_size != frame.size())
    return corrupt(what + ": " + std::to_string(frame.size() - frame_size) +
                   " bytes after the chunk's zstd frame");
  ZSTD_DCtx* dctx = threadDCtx();
  if (!dctx)
    return Error::make(ErrorCode::Generic, "cannot create a zstd decompression context");
  const size_t n = ZSTD_decompressDCtx(dctx, out.data(), chunk.size, frame.data(), frame.size());
  if (ZSTD_isError(n))
    return corrupt(what + ": cannot decompress: " + ZSTD_getErrorName(n));
  if (n != chunk.size)
    return corrupt(what + ": decompressed to " + std::to_string(n) + " bytes, expected " +
                   std::to_string(chunk.size));
  if (format::xxh3(out.first(chunk.size)) != chunk.content_hash)
    return corrupt(what + ": content hash mismatch (archive damaged)");
  releaseMappedPages(payload);
  return success();
}

Result<ModuleSketch> ArchiveReader::readModule(size_t index) const {
  const State& s = *state_;
  if (index >= s.modules.size())
    return Error::make(ErrorCode::InvalidArgument, "no module " + std::to_string(index));
  const uint64_t offset = s.modules[index].block_offset;
  auto data = s.payload(offset, BlockType::Module, 0);
  PROCSNAP_TRY(data);
  const std::string what = "module " + s.at(offset);
  FrameStream stream(*data, what);
  auto declared = stream.declaredSize(format::kMaxModulePayloadSize);
  PROCSNAP_TRY(declared);
  PROCSNAP_TRY(stream.start());
  std::byte length_bytes[4];
  if (*declared < 4)
    return corrupt(what + ": too short");
  PROCSNAP_TRY(stream.readExactly(length_bytes, 4));
  const uint32_t json_length = format::loadU32(length_bytes);
  if (json_length > format::kMaxModuleJsonSize || json_length > *declared - 4)
    return corrupt(what + ": json length " + std::to_string(json_length) + " is impossible");
  std::string json(json_length, '\0');
  PROCSNAP_TRY(stream.readExactly(reinterpret_cast<std::byte*>(json.data()), json_length));
  auto head = decodeModuleHead(json);
  PROCSNAP_TRY(head);
  uint64_t left = *declared - 4 - json_length;
  ModuleSketch sketch;
  sketch.record = std::move(head->record);
  sketch.file_size = head->file_size;
  sketch.pieces.reserve(head->pieces.size());
  for (const auto& [piece_offset, length] : head->pieces) {
    if (length > left)
      return corrupt(what + ": pieces exceed the payload");
    left -= length;
    ModuleSketch::Piece piece;
    piece.offset = piece_offset;
    // Grown in steps like a document: a frame that declares gigabytes but holds a few bytes
    // fails before it gets that memory (the declared size alone is bounded only by the limit).
    while (piece.bytes.size() < length) {
      const uint64_t done = piece.bytes.size();
      const uint64_t step =
          std::min<uint64_t>(length - done, std::max<uint64_t>(done, kInitialDocumentBuffer));
      piece.bytes.resize(done + step);
      PROCSNAP_TRY(stream.readExactly(piece.bytes.data() + done, step));
    }
    sketch.pieces.push_back(std::move(piece));
  }
  if (left != 0)
    return corrupt(what + ": " + std::to_string(left) + " bytes after the last piece");
  PROCSNAP_TRY(stream.finish());
  return sketch;
}

VerifyReport ArchiveReader::verify(const std::function<void(uint64_t, uint64_t)>& progress) const {
  const State& s = *state_;
  VerifyReport report;
  report.format_version = s.version;
  report.header_ok = true; // open() refuses a file whose header is wrong
  report.file_size = s.map.size;
  report.intact_prefix = s.map.size;

  std::vector<format::IndexEntry> walked; // what an index should list
  std::optional<uint64_t> index_offset;
  std::span<const std::byte> index_payload;
  std::optional<uint64_t> trailer_offset;
  uint64_t next_progress = kProgressInterval;
  std::vector<std::byte> buffer;
  std::vector<ChunkInfo> walked_chunks; // every chunk block that decodes, in file order
  bool have_metadata = false;

  auto damaged = [&](uint64_t offset, uint16_t type, uint64_t size, std::string problem) {
    if (report.blocks_damaged == 0 && report.intact_prefix == s.map.size)
      report.intact_prefix = offset;
    ++report.blocks_damaged;
    report.damaged.push_back(
        BlockReport{offset, type, typeName(type), size, false, std::move(problem)});
  };

  walkBlocks(s.map, [&](const WalkStep& step) {
    if (progress && step.offset >= next_progress) {
      progress(step.offset, s.map.size);
      next_progress = step.offset + kProgressInterval;
    }
    if (step.kind == WalkStep::Trailer) {
      trailer_offset = step.offset;
      if (step.offset + step.size != s.map.size)
        damaged(step.offset + step.size, 0, s.map.size - step.offset - step.size,
                "unexpected bytes after the trailer");
      return false;
    }
    if (step.kind == WalkStep::Damaged) {
      damaged(step.offset, 0, step.size, step.problem);
      return true;
    }
    const uint16_t type = step.header.type;
    if (index_offset) { // nothing but the trailer may follow the index
      damaged(step.offset, type, step.size, "block after the index");
      return true;
    }
    format::IndexEntry entry;
    entry.block_offset = step.offset;
    entry.type = type;
    entry.flags = step.header.flags;
    entry.block_size = step.size;
    if (!step.payload_ok) {
      damaged(step.offset, type, step.size, step.problem);
      entry.reserved = 1; // compare only where the block is and what it is
      walked.push_back(entry);
      return true;
    }
    const auto data = s.bytes(step.offset + format::kBlockHeaderSize, step.header.payload_size);
    std::optional<std::string> problem;
    switch (static_cast<BlockType>(type)) {
    case BlockType::Chunk: {
      if (data.size() <= format::kChunkPrefixSize) {
        problem = "chunk block too small";
        break;
      }
      const auto prefix = format::decodeChunkPrefix(data.data());
      entry.address = prefix.address;
      entry.uncompressed_size = prefix.size;
      entry.content_hash = prefix.content_hash;
      if (prefix.size == 0 || prefix.size > format::kMaxChunkSize) {
        problem = "chunk has an impossible size " + std::to_string(prefix.size);
        break;
      }
      if (prefix.address + prefix.size < prefix.address) {
        problem = "chunk at " + hex(prefix.address) + " runs past the end of the address space";
        break;
      }
      walked_chunks.push_back({prefix.address, prefix.size, prefix.content_hash, step.offset, 0});
      buffer.resize(prefix.size);
      ChunkInfo info{prefix.address, prefix.size, prefix.content_hash, step.offset,
                     data.size() - format::kChunkPrefixSize};
      auto read = readChunk(info, buffer);
      ++report.chunks_checked;
      if (!read.ok())
        problem = read.error().message;
      break;
    }
    case BlockType::Metadata:
      problem = checkDocument(data, "metadata", entry, decodeMetadata);
      have_metadata = true;
      break;
    case BlockType::Stats:
      problem = checkDocument(data, "stats", entry, decodeStatsBlock);
      break;
    case BlockType::Module: {
      auto info = s.moduleInfo(step.offset, data, 0);
      if (!info.ok()) {
        problem = info.error().message;
        break;
      }
      FrameStream stream(data, "module");
      auto declared = stream.declaredSize(format::kMaxModulePayloadSize);
      entry.uncompressed_size = declared.ok() ? *declared : 0;
      // Decompress the whole module to prove every piece is readable.
      auto index = std::find_if(s.modules.begin(), s.modules.end(),
                                [&](const ModuleInfo& m) { return m.block_offset == step.offset; });
      if (index != s.modules.end()) {
        auto sketch = readModule(static_cast<size_t>(index - s.modules.begin()));
        if (!sketch.ok())
          problem = sketch.error().message;
      }
      break;
    }
    case BlockType::Redaction: {
      auto manifest = s.redactionBlock(step.offset, data, 0);
      if (!manifest.ok())
        problem = manifest.error().message;
      break;
    }
    case BlockType::Index:
      index_offset = step.offset;
      index_payload = data;
      return true; // not listed in itself
    default:
      break;
    }
    if (problem)
      damaged(step.offset, type, step.size, *problem);
    else
      ++report.blocks_intact;
    walked.push_back(entry);
    return true;
  });

  // Chunks must be disjoint: open refuses an index whose chunks overlap, and two blocks for
  // the same address (a duplicated chunk) would make the content depend on which one is read.
  std::stable_sort(walked_chunks.begin(), walked_chunks.end(),
                   [](const ChunkInfo& a, const ChunkInfo& b) { return a.address < b.address; });
  for (size_t i = 1, last = 0; i < walked_chunks.size(); ++i) {
    const ChunkInfo& before = walked_chunks[last];
    const ChunkInfo& chunk = walked_chunks[i];
    if (chunk.address >= before.address + before.size) {
      last = i;
      continue;
    }
    const bool duplicate = chunk.address == before.address && chunk.size == before.size &&
                           chunk.content_hash == before.content_hash;
    if (report.blocks_intact > 0)
      --report.blocks_intact;
    damaged(chunk.block_offset, static_cast<uint16_t>(BlockType::Chunk), 0,
            "chunk at " + hex(chunk.address) +
                (duplicate ? " duplicates the chunk block at " : " overlaps the chunk block at ") +
                hex(before.block_offset));
  }
  if (!have_metadata)
    damaged(0, static_cast<uint16_t>(BlockType::Metadata), 0, "archive has no metadata block");

  // The trailer must be the last 32 bytes and point at the index just before it.
  if (trailer_offset && *trailer_offset + format::kTrailerSize == s.map.size) {
    const auto trailer = format::decodeTrailer(s.map.data + *trailer_offset);
    report.trailer_ok = trailer && trailer->file_size == s.map.size && index_offset &&
                        trailer->index_block_offset == *index_offset;
  }
  if (!trailer_offset)
    damaged(s.map.size, 0, 0, "archive has no trailer (truncated or unfinished)");

  // The index must list exactly the blocks found.
  if (index_offset) {
    ++report.blocks_intact;
    bool same = index_payload.size() >= format::kIndexHeaderSize;
    if (same) {
      const uint32_t entry_size = format::loadU32(index_payload.data());
      const uint64_t count = format::loadU64(index_payload.data() + 8);
      same = entry_size >= format::kIndexEntrySize && count == walked.size() &&
             (index_payload.size() - format::kIndexHeaderSize) / entry_size == count;
      for (uint64_t i = 0; same && i < count; ++i) {
        const auto e = format::decodeIndexEntry(index_payload.data() + format::kIndexHeaderSize +
                                                i * entry_size);
        const auto& w = walked[i];
        same = e.block_offset == w.block_offset && e.type == w.type && e.flags == w.flags &&
               e.block_size == w.block_size &&
               (w.reserved == 1 || // a damaged block: its contents cannot be compared
                (e.address == w.address && e.content_hash == w.content_hash &&
                 (e.uncompressed_size == w.uncompressed_size || w.uncompressed_size == 0)));
      }
    }
    report.index_ok = same;
    if (!same)
      damaged(*index_offset, static_cast<uint16_t>(BlockType::Index), 0,
              "index does not match the blocks in the file");
  }
  // Whatever else a strict open checks (index entries against the blocks, module heads,
  // stats, the redaction manifest) verify checks too: an archive open refuses is never intact.
  if (report.ok()) {
    State strict;
    strict.path = s.path;
    strict.map = s.map;
    auto opened = strict.openFromTrailer();
    strict.map = Mapping{}; // borrowed: s unmaps it
    if (!opened.ok())
      damaged(0, 0, 0, "a strict open refuses the archive: " + opened.error().message);
  }
  if (progress)
    progress(s.map.size, s.map.size);
  return report;
}

} // namespace procsnap
