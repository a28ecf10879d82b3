#include "common/archive/writer.h"

#include "common/archive/format.h"
#include "common/archive/metadata_codec.h"

#include <xxhash.h>
#include <zstd.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <map>
#include <poll.h>
#include <string>
#include <sys/uio.h>
#include <unistd.h>

namespace procsnap {

namespace {

// JSON compresses well and is small next to memory contents: a middle level is cheap here.
constexpr int kDocumentCompressionLevel = 3;

std::string hex(uint64_t value) {
  char buffer[2 + 16 + 1];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIx64, value);
  return buffer;
}

std::span<const std::byte> asBytes(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* cctx) const { ZSTD_freeCCtx(cctx); }
};
using CCtxPtr = std::unique_ptr<ZSTD_CCtx, CCtxDeleter>;

struct XxhStateDeleter {
  void operator()(XXH3_state_t* state) const { XXH3_freeState(state); }
};

} // namespace

uint64_t contentHash(std::span<const std::byte> bytes) {
  return format::xxh3(bytes);
}

// ---------------------------------------------------------------------------------------
// ChunkCompressor

// zstd's levels 3 and 4 (double-fast) accept matches of 5 bytes. Process memory is mostly
// 8-byte words (pointers, integers, lengths), and there 5-byte matches inside words cost more
// to encode than the literals they replace: a minimum of 6 made the sample's mixed pages
// 0.24% smaller at the same speed (1 MiB chunks, zstd 1.5.4). The other levels already use 6
// or more, or search well enough not to need it.
constexpr int kWordMemoryMinMatch = 6;

struct ChunkCompressor::Context {
  CCtxPtr cctx{ZSTD_createCCtx()};
  // Frames are compressed here and copied out at their size: a vector sized to
  // ZSTD_compressBound would be zero-filled per chunk and keep 1 MiB of capacity while it
  // waits to be written.
  std::vector<std::byte> scratch;
};

ChunkCompressor::ChunkCompressor(int level) : context_(std::make_unique<Context>()) {
  if (!context_->cctx)
    return;
  // Parameters stay set across frames (only ZSTD_reset_parameters clears them). The frame
  // records its content size and carries no zstd checksum (the content hash covers it).
  ZSTD_CCtx_setParameter(context_->cctx.get(), ZSTD_c_compressionLevel, level);
  if (level == 3 || level == 4)
    ZSTD_CCtx_setParameter(context_->cctx.get(), ZSTD_c_minMatch, kWordMemoryMinMatch);
  ZSTD_CCtx_setParameter(context_->cctx.get(), ZSTD_c_checksumFlag, 0);
  ZSTD_CCtx_setParameter(context_->cctx.get(), ZSTD_c_contentSizeFlag, 1);
}

ChunkCompressor::~ChunkCompressor() = default;

Result<CompressedChunk> ChunkCompressor::compress(uint64_t address,
                                                  std::span<const std::byte> bytes) {
  if (bytes.empty() || bytes.size() > format::kMaxChunkSize)
    return Error::make(ErrorCode::InvalidArgument,
                       "chunk at " + hex(address) + " has " + std::to_string(bytes.size()) +
                           " bytes; a chunk holds 1 to " + std::to_string(format::kMaxChunkSize));
  if (address + bytes.size() < address)
    return Error::make(ErrorCode::InvalidArgument,
                       "chunk at " + hex(address) + " runs past the end of the address space");
  if (!context_->cctx)
    return Error::make(ErrorCode::Generic, "cannot create a zstd compression context");
  CompressedChunk chunk;
  chunk.address = address;
  chunk.size = static_cast<uint32_t>(bytes.size());
  chunk.content_hash = contentHash(bytes);
  std::vector<std::byte>& scratch = context_->scratch;
  if (const size_t bound = ZSTD_compressBound(bytes.size()); scratch.size() < bound)
    scratch.resize(bound);
  const size_t written = ZSTD_compress2(context_->cctx.get(), scratch.data(), scratch.size(),
                                        bytes.data(), bytes.size());
  if (ZSTD_isError(written))
    return Error::make(ErrorCode::Generic,
                       std::string("zstd compression failed: ") + ZSTD_getErrorName(written));
  chunk.frame.assign(scratch.begin(), scratch.begin() + static_cast<ptrdiff_t>(written));
  return chunk;
}

// ---------------------------------------------------------------------------------------
// ArchiveWriter

struct ArchiveWriter::State {
  enum class Phase { Start, Header, Metadata, Stats, Finished, Failed };

  int fd = -1;
  Phase phase = Phase::Start;
  uint64_t offset = 0;
  std::vector<format::IndexEntry> index;
  std::map<uint64_t, uint64_t> chunk_ranges; // start -> end, to refuse overlapping chunks
  bool partial = false;
  std::string partial_reason;
  bool redactions_written = false;
  CCtxPtr cctx{ZSTD_createCCtx()};
  std::unique_ptr<XXH3_state_t, XxhStateDeleter> hash_state{XXH3_createState()};

  Result<void> expect(Phase wanted, const char* call) const {
    if (phase == wanted)
      return success();
    if (phase == Phase::Failed)
      return Error::make(ErrorCode::InvalidArgument,
                         std::string(call) + " after an earlier write failed");
    return Error::make(ErrorCode::InvalidArgument,
                       std::string(call) + " called out of order (see archive_writer.h)");
  }

  // Writes every byte of iov (EINTR, short writes and non-blocking fds handled).
  Result<void> writeAll(iovec* iov, int count) {
    while (count > 0) {
      const ssize_t n = ::writev(fd, iov, count);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          pollfd pfd{fd, POLLOUT, 0};
          (void)::poll(&pfd, 1, -1); // the caller chose a non-blocking fd; wait for room
          continue;
        }
        return ioError(errno);
      }
      offset += static_cast<uint64_t>(n);
      size_t left = static_cast<size_t>(n);
      while (count > 0 && left >= iov->iov_len) {
        left -= iov->iov_len;
        ++iov;
        --count;
      }
      if (count > 0) {
        iov->iov_base = static_cast<char*>(iov->iov_base) + left;
        iov->iov_len -= left;
      }
    }
    return success();
  }

  Error ioError(int error) {
    phase = Phase::Failed;
    if (error == ENOSPC || error == EDQUOT)
      return Error::make(ErrorCode::NoSpace, "no space left on device after writing " +
                                                 std::to_string(offset) + " bytes of the archive");
    if (error == EPIPE)
      return Error::make(ErrorCode::Io, "the reader of the archive went away (broken pipe) after " +
                                            std::to_string(offset) + " bytes");
    return Error::make(ErrorCode::Io,
                       std::string("cannot write the archive: ") + std::strerror(error));
  }

  // Appends one block whose payload is the concatenation of parts.
  Result<void> writeBlock(format::BlockType type, uint16_t flags,
                          std::initializer_list<std::span<const std::byte>> parts,
                          format::IndexEntry entry) {
    uint64_t payload_size = 0;
    XXH3_64bits_reset(hash_state.get());
    for (auto part : parts) {
      payload_size += part.size();
      XXH3_64bits_update(hash_state.get(), part.data(), part.size());
    }
    format::BlockHeader header;
    header.type = static_cast<uint16_t>(type);
    header.flags = flags;
    header.payload_size = payload_size;
    header.payload_checksum = XXH3_64bits_digest(hash_state.get());
    std::byte header_bytes[format::kBlockHeaderSize];
    format::encodeBlockHeader(header, header_bytes);

    iovec iov[4];
    int count = 0;
    iov[count++] = {header_bytes, sizeof header_bytes};
    for (auto part : parts)
      if (!part.empty())
        iov[count++] = {const_cast<std::byte*>(part.data()), part.size()};

    entry.block_offset = offset;
    entry.type = header.type;
    entry.flags = flags;
    entry.block_size = format::kBlockHeaderSize + payload_size;
    PROCSNAP_TRY(writeAll(iov, count));
    index.push_back(entry);
    return success();
  }

  // Compresses parts into one zstd frame that records its content size.
  Result<std::vector<std::byte>>
  compressDocument(std::initializer_list<std::span<const std::byte>> parts) {
    if (!cctx)
      return Error::make(ErrorCode::Generic, "cannot create a zstd compression context");
    uint64_t total = 0;
    for (auto part : parts)
      total += part.size();
    ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kDocumentCompressionLevel);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setPledgedSrcSize(cctx.get(), total);
    std::vector<std::byte> frame(ZSTD_compressBound(total));
    ZSTD_outBuffer out{frame.data(), frame.size(), 0};
    size_t index_of_part = 0;
    for (auto part : parts) {
      const bool last = ++index_of_part == parts.size();
      ZSTD_inBuffer in{part.data(), part.size(), 0};
      const ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
      for (;;) {
        const size_t left = ZSTD_compressStream2(cctx.get(), &out, &in, mode);
        if (ZSTD_isError(left))
          return Error::make(ErrorCode::Generic,
                             std::string("zstd compression failed: ") + ZSTD_getErrorName(left));
        if (last ? left == 0 : in.pos == in.size)
          break;
        if (out.pos == out.size)
          return Error::make(ErrorCode::Generic, "zstd output exceeded its bound");
      }
    }
    frame.resize(out.pos);
    return frame;
  }

  Result<void> writeDocument(format::BlockType type, std::string_view document) {
    auto frame = compressDocument({asBytes(document)});
    PROCSNAP_TRY(frame);
    format::IndexEntry entry;
    entry.uncompressed_size = document.size();
    return writeBlock(type, format::kBlockFlagZstdPayload, {*frame}, entry);
  }
};

ArchiveWriter::ArchiveWriter(int fd) : state_(std::make_unique<State>()) {
  state_->fd = fd;
}

ArchiveWriter::~ArchiveWriter() = default;

Result<void> ArchiveWriter::writeHeader() {
  PROCSNAP_TRY(state_->expect(State::Phase::Start, "writeHeader"));
  std::byte header[format::kFileHeaderSize];
  std::memcpy(header, format::kFileMagic.data(), format::kFileMagic.size());
  format::storeU32(header + 8, format::kFormatVersion);
  format::storeU32(header + 12, 0); // flags: none defined in version 1
  iovec iov{header, sizeof header};
  PROCSNAP_TRY(state_->writeAll(&iov, 1));
  state_->phase = State::Phase::Header;
  return success();
}

Result<void> ArchiveWriter::writeMetadata(const SnapshotMetadata& metadata) {
  PROCSNAP_TRY(state_->expect(State::Phase::Header, "writeMetadata"));
  PROCSNAP_TRY(state_->writeDocument(format::BlockType::Metadata, encodeMetadata(metadata)));
  if (metadata.partial) {
    state_->partial = true;
    if (state_->partial_reason.empty())
      state_->partial_reason = metadata.partial_reason;
  }
  state_->phase = State::Phase::Metadata;
  return success();
}

Result<void> ArchiveWriter::writeModule(const ModuleSketch& sketch) {
  PROCSNAP_TRY(state_->expect(State::Phase::Metadata, "writeModule"));
  ModuleBlockHead head;
  head.record = sketch.record;
  head.file_size = sketch.file_size;
  uint64_t previous_end = 0;
  uint64_t pieces_size = 0;
  for (const auto& piece : sketch.pieces) {
    const uint64_t length = piece.bytes.size();
    if (piece.offset < previous_end || length > sketch.file_size ||
        piece.offset > sketch.file_size - length)
      return Error::make(ErrorCode::InvalidArgument,
                         "module " + sketch.record.path + ": piece at offset " +
                             std::to_string(piece.offset) +
                             " overlaps the previous one or lies outside the file");
    previous_end = piece.offset + length;
    pieces_size += length;
    head.pieces.emplace_back(piece.offset, length);
  }
  const std::string json = encodeModuleHead(head);
  if (json.size() > format::kMaxModuleJsonSize ||
      4 + json.size() + pieces_size > format::kMaxModulePayloadSize)
    return Error::make(ErrorCode::InvalidArgument,
                       "module " + sketch.record.path + " is too large for one block");
  std::byte length_bytes[4];
  format::storeU32(length_bytes, static_cast<uint32_t>(json.size()));

  // The frame is made of the length, the JSON and every piece in order. Concatenating the
  // pieces first would copy an embedded binary once more, so compress them as a stream.
  ZSTD_CCtx* cctx = state_->cctx.get();
  if (!cctx)
    return Error::make(ErrorCode::Generic, "cannot create a zstd compression context");
  const uint64_t total = 4 + json.size() + pieces_size;
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, kDocumentCompressionLevel);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setPledgedSrcSize(cctx, total);
  std::vector<std::byte> frame(ZSTD_compressBound(total));
  ZSTD_outBuffer out{frame.data(), frame.size(), 0};
  auto feed = [&](std::span<const std::byte> bytes) -> Result<void> {
    ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
    while (in.pos < in.size) {
      const size_t rc = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue);
      if (ZSTD_isError(rc))
        return Error::make(ErrorCode::Generic,
                           std::string("zstd compression failed: ") + ZSTD_getErrorName(rc));
    }
    return success();
  };
  PROCSNAP_TRY(feed({length_bytes, 4}));
  PROCSNAP_TRY(feed(asBytes(json)));
  for (const auto& piece : sketch.pieces)
    PROCSNAP_TRY(feed(piece.bytes));
  for (;;) {
    ZSTD_inBuffer none{nullptr, 0, 0};
    const size_t left = ZSTD_compressStream2(cctx, &out, &none, ZSTD_e_end);
    if (ZSTD_isError(left))
      return Error::make(ErrorCode::Generic,
                         std::string("zstd compression failed: ") + ZSTD_getErrorName(left));
    if (left == 0)
      break;
    if (out.pos == out.size)
      return Error::make(ErrorCode::Generic, "zstd output exceeded its bound");
  }
  frame.resize(out.pos);

  format::IndexEntry entry;
  entry.uncompressed_size = total;
  return state_->writeBlock(format::BlockType::Module, format::kBlockFlagZstdPayload, {frame},
                            entry);
}

Result<void> ArchiveWriter::writeChunk(const CompressedChunk& chunk) {
  PROCSNAP_TRY(state_->expect(State::Phase::Metadata, "writeChunk"));
  const uint64_t end = chunk.address + chunk.size;
  if (chunk.size == 0 || chunk.size > format::kMaxChunkSize || end < chunk.address)
    return Error::make(ErrorCode::InvalidArgument, "chunk at " + hex(chunk.address) +
                                                       " has an invalid size " +
                                                       std::to_string(chunk.size));
  // The frame must say how much it holds, and say the same as the chunk.
  const unsigned long long declared =
      ZSTD_getFrameContentSize(chunk.frame.data(), chunk.frame.size());
  if (declared != chunk.size)
    return Error::make(ErrorCode::InvalidArgument,
                       "chunk at " + hex(chunk.address) +
                           ": frame does not declare the chunk's size (use ChunkCompressor)");
  auto& ranges = state_->chunk_ranges;
  auto next = ranges.lower_bound(chunk.address);
  if ((next != ranges.end() && next->first < end) ||
      (next != ranges.begin() && std::prev(next)->second > chunk.address))
    return Error::make(ErrorCode::InvalidArgument,
                       "chunk at " + hex(chunk.address) + " overlaps a chunk already written");

  format::ChunkPrefix prefix{chunk.address, chunk.size, 0, chunk.content_hash};
  std::byte prefix_bytes[format::kChunkPrefixSize];
  format::encodeChunkPrefix(prefix, prefix_bytes);
  format::IndexEntry entry;
  entry.address = chunk.address;
  entry.uncompressed_size = chunk.size;
  entry.content_hash = chunk.content_hash;
  // Flags stay clear: the payload starts with the plain prefix, not with the frame.
  PROCSNAP_TRY(state_->writeBlock(format::BlockType::Chunk, 0,
                                  {std::span<const std::byte>(prefix_bytes), chunk.frame}, entry));
  ranges.emplace_hint(next, chunk.address, end);
  return success();
}

Result<void> ArchiveWriter::writeRedactions(const RedactionManifest& manifest) {
  PROCSNAP_TRY(state_->expect(State::Phase::Metadata, "writeRedactions"));
  if (state_->redactions_written)
    return Error::make(ErrorCode::InvalidArgument, "writeRedactions called twice");
  if (manifest.entries.size() > kMaxRedactionEntries)
    return Error::make(ErrorCode::InvalidArgument, "redaction manifest lists more than " +
                                                       std::to_string(kMaxRedactionEntries) +
                                                       " entries");
  const std::vector<std::byte> payload = encodeRedactionManifest(manifest);
  auto frame = state_->compressDocument({payload});
  PROCSNAP_TRY(frame);
  format::IndexEntry entry;
  entry.uncompressed_size = payload.size();
  PROCSNAP_TRY(state_->writeBlock(format::BlockType::Redaction, format::kBlockFlagZstdPayload,
                                  {*frame}, entry));
  state_->redactions_written = true;
  return success();
}

Result<void> ArchiveWriter::writeStats(const CaptureStats& stats) {
  PROCSNAP_TRY(state_->expect(State::Phase::Metadata, "writeStats"));
  StatsBlock block{stats, state_->partial, state_->partial_reason};
  PROCSNAP_TRY(state_->writeDocument(format::BlockType::Stats, encodeStatsBlock(block)));
  state_->phase = State::Phase::Stats;
  return success();
}

Result<void> ArchiveWriter::finish() {
  if (state_->phase != State::Phase::Stats)
    PROCSNAP_TRY(state_->expect(State::Phase::Metadata, "finish"));
  const auto& index = state_->index;
  std::vector<std::byte> table(format::kIndexHeaderSize + index.size() * format::kIndexEntrySize);
  format::storeU32(table.data(), format::kIndexEntrySize);
  format::storeU32(table.data() + 4, 0);
  format::storeU64(table.data() + 8, index.size());
  for (size_t i = 0; i < index.size(); ++i)
    format::encodeIndexEntry(index[i],
                             table.data() + format::kIndexHeaderSize + i * format::kIndexEntrySize);
  const uint64_t index_offset = state_->offset;
  // The index does not list itself: writeBlock appends its entry, which is dropped below.
  PROCSNAP_TRY(state_->writeBlock(format::BlockType::Index, 0, {table}, {}));
  state_->index.pop_back();

  format::Trailer trailer;
  trailer.index_block_offset = index_offset;
  trailer.file_size = state_->offset + format::kTrailerSize;
  trailer.flags = state_->partial ? format::kTrailerFlagPartial : 0;
  std::byte trailer_bytes[format::kTrailerSize];
  format::encodeTrailer(trailer, trailer_bytes);
  iovec iov{trailer_bytes, sizeof trailer_bytes};
  PROCSNAP_TRY(state_->writeAll(&iov, 1));
  state_->phase = State::Phase::Finished;
  return success();
}

void ArchiveWriter::setPartial(std::string reason) {
  state_->partial = true;
  state_->partial_reason = std::move(reason);
}

uint64_t ArchiveWriter::bytesWritten() const {
  return state_->offset;
}

} // namespace procsnap
