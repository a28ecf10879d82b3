#include "tests/support/archive_synth.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <unistd.h>

namespace procsnap::test {

namespace {

constexpr uint64_t kPage = 4096;

MapsEntry mapping(uint64_t start, uint64_t end, const char* perms, std::string path,
                  uint64_t inode = 0, uint64_t offset = 0) {
  MapsEntry m;
  m.start = start;
  m.end = end;
  m.perms.read = perms[0] == 'r';
  m.perms.write = perms[1] == 'w';
  m.perms.execute = perms[2] == 'x';
  m.perms.shared = perms[3] == 's';
  m.offset = offset;
  m.inode = inode;
  if (inode != 0) {
    m.dev_major = 8;
    m.dev_minor = 1;
  }
  m.path = std::move(path);
  return m;
}

RegionRecord region(MapsEntry map, RegionKind kind, std::vector<PageRun> pages) {
  RegionRecord r;
  const uint64_t kb = map.size() / 1024;
  r.smaps.map = std::move(map);
  uint64_t stored = 0;
  for (const auto& run : pages)
    if (run.state == PageState::Stored || run.state == PageState::Zero)
      stored += (run.end - run.start) / 1024;
  r.smaps.fields = {{"Size", kb}, {"Rss", stored}, {"Pss", stored}, {"Swap", 0}};
  r.smaps.vm_flags = {"rd", "mr", "mw", "me"};
  r.kind = kind;
  r.pages = std::move(pages);
  return r;
}

} // namespace

std::byte syntheticByte(uint64_t address) {
  uint64_t x = address * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return static_cast<std::byte>(x >> 7);
}

SnapshotMetadata syntheticMetadata() {
  SnapshotMetadata m;
  m.tool_version = "synthetic";
  m.capture_time = "2024-01-02T03:04:05Z";
  m.process.pid = 4242;
  m.process.ppid = 1;
  m.process.comm = "synthetic";
  m.process.exe = "/synthetic/bin";
  m.process.cwd = "/";
  m.process.cmdline = {"/synthetic/bin", "--flag"};
  m.process.status = {{"Name", "synthetic"}, {"State", "S (sleeping)"}, {"Pid", "4242"}};
  m.process.auxv = {{6, 4096}, {3, 0x400040}, {0, 0}};
  m.process.uid = {1000, 1000, 1000, 1000};
  m.process.gid = {1000, 1000, 1000, 1000};
  m.host.hostname = "synth-host";
  m.host.kernel_release = "6.0.0-synthetic";
  m.host.machine = "x86_64";
  m.host.page_size = kPage;

  m.regions.push_back(region(mapping(0x400000, 0x402000, "r-xp", "/synthetic/bin", 77),
                             RegionKind::Text, {{0x400000, 0x402000, PageState::Stored}}));
  m.regions.push_back(region(mapping(0x601000, 0x604000, "rw-p", "/synthetic/bin", 77, 0x1000),
                             RegionKind::Data,
                             {{0x601000, 0x602000, PageState::Stored},
                              {0x602000, 0x603000, PageState::Zero},
                              {0x603000, 0x604000, PageState::Stored}}));
  m.regions.push_back(region(
      mapping(0x1000000, 0x1010000, "rw-p", "[heap]"), RegionKind::Heap,
      {{0x1000000, 0x1008000, PageState::Stored}, {0x1008000, 0x1010000, PageState::NotPresent}}));
  m.regions.push_back(region(mapping(0x7ffd0000, 0x7fff0000, "rw-p", "[stack]"),
                             RegionKind::MainStack,
                             {{0x7ffd0000, 0x7ffec000, PageState::NotPresent},
                              {0x7ffec000, 0x7fff0000, PageState::Stored}}));
  m.regions.push_back(region(mapping(0x7fff0000, 0x7fff2000, "r--p", "[vvar]"), RegionKind::Vvar,
                             {{0x7fff0000, 0x7fff2000, PageState::Unreadable}}));
  m.regions.back().note = "the kernel refuses to read [vvar]";

  ThreadRecord thread;
  thread.tid = 4242;
  thread.name = "synthetic";
  thread.state = "S";
  thread.pc = 0x400123;
  thread.sp = 0x7ffef000;
  RegisterSet prstatus;
  prstatus.note_type = 1;
  prstatus.bytes.resize(27 * 8);
  for (size_t i = 0; i < prstatus.bytes.size(); ++i)
    prstatus.bytes[i] = static_cast<std::byte>(i);
  thread.register_sets.push_back(std::move(prstatus));
  m.threads.push_back(std::move(thread));

  ModuleRecord module;
  module.path = "/synthetic/bin";
  module.build_id = "0123456789abcdef0123456789abcdef01234567";
  module.file_size = 0x3000;
  module.load_address = 0x400000;
  module.source = "map_files";
  m.modules.push_back(module);

  uint64_t stored = 0;
  for (const auto& r : m.regions)
    for (const auto& run : r.pages)
      if (run.state == PageState::Stored)
        stored += run.end - run.start;
  m.stats.bytes_copied = stored;
  m.stats.bytes_stored = stored;
  m.stats.threads = 1;
  return m;
}

std::vector<SyntheticChunk> syntheticChunks(const SnapshotMetadata& metadata, uint32_t chunk_size) {
  std::vector<SyntheticChunk> chunks;
  for (const auto& r : metadata.regions)
    for (const auto& run : r.pages) {
      if (run.state != PageState::Stored)
        continue;
      for (uint64_t at = run.start; at < run.end; at += chunk_size) {
        SyntheticChunk chunk;
        chunk.address = at;
        chunk.bytes.resize(std::min<uint64_t>(chunk_size, run.end - at));
        for (size_t i = 0; i < chunk.bytes.size(); ++i)
          chunk.bytes[i] = syntheticByte(at + i);
        chunks.push_back(std::move(chunk));
      }
    }
  return chunks;
}

Result<void> writeSyntheticArchive(const std::string& path, const SnapshotMetadata& metadata,
                                   const std::vector<SyntheticChunk>& chunks,
                                   const SynthOptions& options) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return Error::make(ErrorCode::Io, "cannot create " + path + ": " + std::strerror(errno));
  auto write = [&]() -> Result<void> {
    ArchiveWriter writer(fd);
    ChunkCompressor compressor(options.level);
    PROCSNAP_TRY(writer.writeHeader());
    PROCSNAP_TRY(writer.writeMetadata(metadata));
    for (const auto& module : options.modules)
      PROCSNAP_TRY(writer.writeModule(module));
    for (const auto& chunk : chunks) {
      auto compressed = compressor.compress(chunk.address, chunk.bytes);
      PROCSNAP_TRY(compressed);
      PROCSNAP_TRY(writer.writeChunk(*compressed));
    }
    if (!options.finish)
      return success();
    if (options.write_stats) {
      CaptureStats stats = metadata.stats;
      stats.chunks = static_cast<uint32_t>(chunks.size());
      stats.phase_seconds["write"] = 0.001;
      PROCSNAP_TRY(writer.writeStats(stats));
    }
    return writer.finish();
  };
  auto result = write();
  if (::close(fd) != 0 && result.ok())
    return Error::make(ErrorCode::Io, "cannot close " + path + ": " + std::strerror(errno));
  return result;
}

Result<SnapshotMetadata> writeDefaultSyntheticArchive(const std::string& path) {
  SnapshotMetadata metadata = syntheticMetadata();
  PROCSNAP_TRY(writeSyntheticArchive(path, metadata, syntheticChunks(metadata)));
  return metadata;
}

Result<std::vector<std::byte>> readFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error::make(ErrorCode::NotFound, "cannot read " + path);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty())
    std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

Result<void> writeFileBytes(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out)
    return Error::make(ErrorCode::Io, "cannot write " + path);
  return success();
}

Result<ModuleSketch> embeddedModuleSketch(const std::string& path) {
  auto read = readFileBytes(path);
  PROCSNAP_TRY(read);
  std::vector<std::byte>& bytes = *read;
  ModuleSketch sketch;
  sketch.record.path = path;
  sketch.record.file_size = bytes.size();
  sketch.record.source = "path";
  sketch.record.embedded = true;
  sketch.file_size = bytes.size();
  ModuleSketch::Piece piece;
  piece.bytes = std::move(bytes);
  sketch.pieces.push_back(std::move(piece));
  return sketch;
}

} // namespace procsnap::test
