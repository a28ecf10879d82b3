#include "analyze/sources/archive_snapshot.h"

#include <llvm/Support/FormatVariadic.h>

#include <algorithm>
#include <cstring>
#include <sys/mman.h>

namespace procsnap::analyze {

namespace {

// A chunk larger than this is damage, not data: the writer cuts chunks of about 1 MiB.
constexpr uint64_t kMaxChunkSize = 256ull << 20;
// A module image larger than this is refused: no ELF file we can use is this big, and a
// damaged size must not reserve absurd amounts of address space.
constexpr uint64_t kMaxModuleImageSize = 16ull << 30;

// A module sketch laid out over its file size in an anonymous private mapping: the holes are
// untouched zero pages that cost no memory, so a 200 MB library's sketch stays small.
class SketchImageBuffer final : public llvm::MemoryBuffer {
public:
  static llvm::Expected<std::unique_ptr<SketchImageBuffer>> create(const ModuleSketch& sketch,
                                                                   std::string name) {
    uint64_t size = sketch.file_size;
    if (size == 0 || size > kMaxModuleImageSize)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(), "module '%s' claims an image of %llu bytes",
          sketch.record.path.c_str(), static_cast<unsigned long long>(size));
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
      return llvm::createStringError(std::error_code(errno, std::generic_category()),
                                     "cannot map an image of %llu bytes for module '%s'",
                                     static_cast<unsigned long long>(size),
                                     sketch.record.path.c_str());
    std::unique_ptr<SketchImageBuffer> buffer(new SketchImageBuffer(base, size, std::move(name)));
    for (const auto& piece : sketch.pieces) {
      if (piece.offset > size || piece.bytes.size() > size - piece.offset)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "module '%s': a piece at offset 0x%llx lies past its "
                                       "file size",
                                       sketch.record.path.c_str(),
                                       static_cast<unsigned long long>(piece.offset));
      std::memcpy(static_cast<char*>(base) + piece.offset, piece.bytes.data(), piece.bytes.size());
    }
    mprotect(base, size, PROT_READ); // deliberately unchecked: read-only is only a safeguard
    return buffer;
  }
  ~SketchImageBuffer() override { munmap(base_, size_); }

  llvm::StringRef getBufferIdentifier() const override { return name_; }
  BufferKind getBufferKind() const override { return MemoryBuffer_MMap; }

private:
  SketchImageBuffer(void* base, uint64_t size, std::string name)
      : base_(base), size_(size), name_(std::move(name)) {
    init(static_cast<const char*>(base), static_cast<const char*>(base) + size,
         /*RequiresNullTerminator=*/false);
  }

  void* base_;
  uint64_t size_;
  std::string name_;
};

} // namespace

llvm::Expected<std::unique_ptr<ArchiveSnapshot>> ArchiveSnapshot::open(llvm::StringRef path,
                                                                       const OpenOptions& options) {
  auto reader =
      ArchiveReader::open(path.str(), options.salvage ? OpenMode::Salvage : OpenMode::Strict);
  if (!reader.ok()) {
    // The reader's messages start with the path: name it once.
    llvm::StringRef why = reader.error().message;
    if (why.starts_with(path) && why.drop_front(path.size()).starts_with(": "))
      why = why.drop_front(path.size() + 2);
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "cannot open '%s': %s",
                                   path.str().c_str(), why.str().c_str());
  }
  return std::unique_ptr<ArchiveSnapshot>(
      new ArchiveSnapshot(path.str(), std::move(reader.value()), options));
}

ArchiveSnapshot::ArchiveSnapshot(std::string path, std::unique_ptr<ArchiveReader> reader,
                                 const OpenOptions& options)
    : path_(std::move(path)), reader_(std::move(reader)),
      cache_capacity_(options.chunk_cache_bytes) {}

ArchiveSnapshot::~ArchiveSnapshot() = default;

const SnapshotMetadata& ArchiveSnapshot::metadata() const {
  return reader_->metadata();
}

llvm::Expected<const std::vector<uint8_t>*> ArchiveSnapshot::chunkBytes(size_t chunk_index) const {
  for (auto it = cache_.begin(); it != cache_.end(); ++it) {
    if (it->chunk_index == chunk_index) {
      cache_.splice(cache_.begin(), cache_, it);
      return &cache_.front().bytes;
    }
  }
  const ChunkInfo& chunk = reader_->chunks()[chunk_index];
  if (chunk.size > kMaxChunkSize)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "chunk at 0x%llx claims %u bytes",
                                   static_cast<unsigned long long>(chunk.address), chunk.size);
  CachedChunk entry;
  while (!cache_.empty() && cache_bytes_ + chunk.size > cache_capacity_) {
    cache_bytes_ -= cache_.back().bytes.capacity();
    // Reuse an evicted buffer of about the right size; a much larger one is freed, or one
    // 64 MiB chunk would keep 64 MiB behind every later 1 MiB one.
    if (cache_.back().bytes.capacity() >= chunk.size &&
        cache_.back().bytes.capacity() <= 2 * static_cast<uint64_t>(chunk.size))
      entry = std::move(cache_.back());
    cache_.pop_back();
  }
  entry.chunk_index = chunk_index;
  entry.bytes.resize(chunk.size);
  auto result = reader_->readChunk(
      chunk, std::span<std::byte>(reinterpret_cast<std::byte*>(entry.bytes.data()), chunk.size));
  if (!result.ok())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: chunk at 0x%llx: %s",
                                   path_.c_str(), static_cast<unsigned long long>(chunk.address),
                                   result.error().message.c_str());
  ++chunks_decompressed_;
  cache_bytes_ += entry.bytes.capacity();
  cache_.push_front(std::move(entry));
  return &cache_.front().bytes;
}

llvm::Expected<ReadResult> ArchiveSnapshot::read(uint64_t address,
                                                 llvm::MutableArrayRef<uint8_t> out) const {
  // Copies the stored bytes of [start, stop) from chunks; pages a salvaged archive lost are
  // reported as Lost.
  auto copyStored = [&](int region, PageState, uint64_t start, uint64_t stop, uint8_t* target,
                        ReadResult& result) -> llvm::Error {
    const auto& chunks = reader_->chunks();
    uint64_t cursor = start;
    while (cursor < stop) {
      auto it =
          std::upper_bound(chunks.begin(), chunks.end(), cursor,
                           [](uint64_t value, const ChunkInfo& c) { return value < c.address; });
      const ChunkInfo* chunk = nullptr;
      if (it != chunks.begin() && cursor - std::prev(it)->address < std::prev(it)->size)
        chunk = &*std::prev(it);
      if (!chunk) {
        uint64_t next = it == chunks.end() ? stop : std::min(stop, it->address);
        result.addRun(cursor, next, true, PageState::Lost, region);
        cursor = next;
        continue;
      }
      uint64_t chunk_end = chunk->address + chunk->size;
      uint64_t piece_end = std::min(stop, chunk_end);
      auto bytes = chunkBytes(static_cast<size_t>(chunk - chunks.data()));
      if (!bytes)
        return bytes.takeError();
      if ((*bytes)->size() != chunk->size)
        return llvm::createStringError(llvm::inconvertibleErrorCode(), "chunk size mismatch");
      std::memcpy(target + (cursor - start), (*bytes)->data() + (cursor - chunk->address),
                  piece_end - cursor);
      result.bytes_stored += piece_end - cursor;
      result.addRun(cursor, piece_end, true, PageState::Stored, region);
      cursor = piece_end;
    }
    return llvm::Error::success();
  };
  return readByPageRuns(metadata(), address, out, copyStored);
}

std::vector<StoredExtent> ArchiveSnapshot::storedExtents(uint64_t start, uint64_t end) const {
  std::vector<StoredExtent> extents;
  const auto& chunks = reader_->chunks();
  auto it = std::upper_bound(chunks.begin(), chunks.end(), start,
                             [](uint64_t value, const ChunkInfo& c) { return value < c.address; });
  if (it != chunks.begin())
    --it;
  for (; it != chunks.end() && it->address < end; ++it) {
    uint64_t from = std::max(start, it->address);
    uint64_t to = std::min(end, it->address + it->size);
    if (from >= to)
      continue;
    if (!extents.empty() && extents.back().end == from)
      extents.back().end = to;
    else
      extents.push_back({from, to});
  }
  return extents;
}

ContentDigests ArchiveSnapshot::contentDigests(uint64_t start, uint64_t end) const {
  ContentDigests result;
  result.algorithm = "xxh3-64";
  const auto& chunks = reader_->chunks();
  auto it = std::upper_bound(chunks.begin(), chunks.end(), start,
                             [](uint64_t value, const ChunkInfo& c) { return value < c.address; });
  if (it != chunks.begin() && std::prev(it)->address + std::prev(it)->size > start)
    --it;
  for (; it != chunks.end() && it->address < end; ++it)
    result.digests.push_back({it->address, it->address + it->size, it->content_hash});
  return result;
}

int ArchiveSnapshot::sketchIndexFor(size_t module_index) const {
  const auto& modules = metadata().modules;
  if (module_index >= modules.size())
    return -1;
  const ModuleRecord& wanted = modules[module_index];
  const auto& sketches = reader_->modules();
  for (size_t i = 0; i < sketches.size(); ++i) {
    const ModuleRecord& record = sketches[i].record;
    if (record.path == wanted.path && record.build_id == wanted.build_id)
      return static_cast<int>(i);
  }
  // A binary embedded once for several paths (hard links, deduplicated by build-id).
  for (size_t i = 0; i < sketches.size(); ++i) {
    if (!wanted.build_id.empty() && sketches[i].record.build_id == wanted.build_id)
      return static_cast<int>(i);
  }
  return -1;
}

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
ArchiveSnapshot::moduleImage(size_t module_index) const {
  int sketch_index = sketchIndexFor(module_index);
  if (sketch_index < 0)
    return nullptr;
  auto sketch = reader_->readModule(static_cast<size_t>(sketch_index));
  if (!sketch.ok())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "module '%s': %s",
                                   metadata().modules[module_index].path.c_str(),
                                   sketch.error().message.c_str());
  const ModuleRecord& record = metadata().modules[module_index];
  // Unique per archive and module: LLVMSymbolizer caches in-memory objects by this name.
  std::string name = llvm::formatv("{0}!{1}[{2}#{3}]", path_, record.path,
                                   sketch->record.embedded ? "embedded" : "sketch", module_index)
                         .str();
  auto buffer = SketchImageBuffer::create(*sketch, std::move(name));
  if (!buffer)
    return buffer.takeError();
  return std::unique_ptr<llvm::MemoryBuffer>(std::move(*buffer));
}

} // namespace procsnap::analyze
