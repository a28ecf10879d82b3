// Derives small seed inputs for the fuzz targets from a real archive (fuzz/make_corpus.sh
// captures one): a cut-down archive with the real metadata, the smallest module and two short
// chunks; a truncated copy of it; the metadata and module-head JSON documents; and every module
// sketch as a fuzz_module_sketch input. Usage: fuzz_make_seeds ARCHIVE OUTDIR MAX_BYTES
#include "common/archive/metadata_codec.h"
#include "common/archive/reader.h"
#include "fuzz/fuzz_support.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace {

using namespace procsnap;

// Regions kept in the cut-down metadata: enough for every kind the sample has near its start.
constexpr size_t kSeedRegions = 16;
// Bytes kept of each seed chunk: one page, so the archive stays small.
constexpr uint32_t kSeedChunkBytes = 4096;

bool writeFile(const std::filesystem::path& path, std::span<const std::byte> bytes,
               uint64_t max_bytes) {
  if (bytes.size() > max_bytes) {
    std::fprintf(stderr, "fuzz_make_seeds: skipping %s (%zu bytes)\n", path.c_str(), bytes.size());
    return false;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// The decompressed content of a MODULE block for sketch (docs/FORMAT.md 4.4).
std::vector<std::byte> moduleContent(const ModuleSketch& sketch) {
  ModuleBlockHead head;
  head.record = sketch.record;
  head.file_size = sketch.file_size;
  for (const auto& piece : sketch.pieces)
    head.pieces.emplace_back(piece.offset, piece.bytes.size());
  const std::string json = encodeModuleHead(head);
  std::vector<std::byte> content(4);
  format::storeU32(content.data(), static_cast<uint32_t>(json.size()));
  const auto json_bytes = fuzz::asBytes(json);
  content.insert(content.end(), json_bytes.begin(), json_bytes.end());
  for (const auto& piece : sketch.pieces)
    content.insert(content.end(), piece.bytes.begin(), piece.bytes.end());
  return content;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "fuzz_make_seeds: %s\n", message.c_str());
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 4)
    return fail("usage: fuzz_make_seeds ARCHIVE OUTDIR MAX_BYTES");
  const std::filesystem::path out_dir = argv[2];
  const uint64_t max_bytes = std::strtoull(argv[3], nullptr, 10);
  auto reader = ArchiveReader::open(argv[1]);
  if (!reader.ok())
    return fail(reader.error().message);
  const ArchiveReader& archive = **reader;
  for (const char* target : {"fuzz_archive_reader", "fuzz_module_sketch"})
    std::filesystem::create_directories(out_dir / target);
  const auto reader_dir = out_dir / "fuzz_archive_reader";
  const auto sketch_dir = out_dir / "fuzz_module_sketch";

  // Every module sketch, smallest first.
  std::vector<std::pair<std::vector<std::byte>, ModuleSketch>> modules;
  for (size_t i = 0; i < archive.modules().size(); ++i) {
    auto sketch = archive.readModule(i);
    if (!sketch.ok())
      return fail(sketch.error().message);
    auto content = moduleContent(*sketch);
    modules.emplace_back(std::move(content), std::move(*sketch));
  }
  std::sort(modules.begin(), modules.end(),
            [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
  for (size_t i = 0; i < modules.size(); ++i) {
    std::vector<std::byte> input{std::byte{1}};
    input.insert(input.end(), modules[i].first.begin(), modules[i].first.end());
    writeFile(sketch_dir / ("sketch-" + std::to_string(i)), input, max_bytes);
  }

  // A cut-down archive: real metadata with fewer regions, the smallest module, two chunks.
  SnapshotMetadata metadata = archive.metadata();
  if (metadata.regions.size() > kSeedRegions)
    metadata.regions.resize(kSeedRegions);
  fuzz::ArchiveAssembler assembler;
  const std::string metadata_json = encodeMetadata(metadata);
  assembler.addDocumentBlock(format::BlockType::Metadata, fuzz::asBytes(metadata_json));
  if (!modules.empty())
    assembler.addDocumentBlock(format::BlockType::Module, modules.front().first);
  std::vector<ChunkInfo> chunks = archive.chunks();
  std::sort(chunks.begin(), chunks.end(),
            [](const ChunkInfo& a, const ChunkInfo& b) { return a.stored_size < b.stored_size; });
  if (chunks.size() > 2)
    chunks.resize(2);
  std::sort(chunks.begin(), chunks.end(),
            [](const ChunkInfo& a, const ChunkInfo& b) { return a.address < b.address; });
  for (const ChunkInfo& chunk : chunks) {
    std::vector<std::byte> bytes(chunk.size);
    auto read = archive.readChunk(chunk, bytes);
    if (!read.ok())
      return fail(read.error().message);
    bytes.resize(std::min(chunk.size, kSeedChunkBytes));
    const uint64_t hash = format::xxh3(bytes);
    std::vector<std::byte> payload(format::kChunkPrefixSize);
    format::encodeChunkPrefix({chunk.address, static_cast<uint32_t>(bytes.size()), 0, hash},
                              payload.data());
    const auto frame = fuzz::zstdFrame(bytes);
    payload.insert(payload.end(), frame.begin(), frame.end());
    assembler.addBlock(format::BlockType::Chunk, 0, payload, bytes.size(), chunk.address, hash);
  }
  StatsBlock stats;
  stats.stats = archive.metadata().stats;
  const std::string stats_json = encodeStatsBlock(stats);
  assembler.addDocumentBlock(format::BlockType::Stats, fuzz::asBytes(stats_json));
  const std::vector<std::byte> small = assembler.finish();
  writeFile(reader_dir / "small.psnap", small, max_bytes);
  writeFile(reader_dir / "small-truncated.psnap",
            std::span<const std::byte>(small).first(small.size() * 3 / 5), max_bytes);
  writeFile(reader_dir / "metadata.json", fuzz::asBytes(metadata_json), max_bytes);
  writeFile(reader_dir / "stats.json", fuzz::asBytes(stats_json), max_bytes);
  if (!modules.empty()) {
    const auto& content = modules.front().first;
    const uint32_t json_length = format::loadU32(content.data());
    writeFile(reader_dir / "module-head.json",
              std::span<const std::byte>(content).subspan(4, json_length), max_bytes);
  }
  return 0;
}
