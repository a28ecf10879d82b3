#include "analyze/snapshot.h"

#include "analyze/archive_snapshot.h"
#include "analyze/compressed_source.h"
#include "analyze/core_snapshot.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace procsnap::analyze {

Snapshot::~Snapshot() = default;

ContentDigests Snapshot::contentDigests(uint64_t, uint64_t) const {
  return {};
}

bool ReadResult::anyUnmapped() const {
  return std::any_of(runs.begin(), runs.end(), [](const ReadRun& run) { return !run.mapped; });
}

int Snapshot::findRegion(uint64_t address) const {
  const auto& regions = metadata().regions;
  auto it = std::upper_bound(
      regions.begin(), regions.end(), address,
      [](uint64_t value, const RegionRecord& region) { return value < region.map().end; });
  if (it == regions.end() || address < it->map().start)
    return -1;
  return static_cast<int>(it - regions.begin());
}

llvm::Error toLlvmError(const procsnap::Error& error) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), error.message);
}

llvm::Expected<std::unique_ptr<Snapshot>> openSnapshot(llvm::StringRef path,
                                                       const OpenOptions& options) {
  // Recognize the source by its first bytes, not its name.
  uint8_t magic[8] = {};
  ssize_t got = 0;
  {
    int fd = ::open(path.str().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::error_code ec(errno, std::generic_category());
      return llvm::createStringError(ec, "cannot open '%s': %s", path.str().c_str(),
                                     ec.message().c_str());
    }
    got = ::read(fd, magic, sizeof magic);
    ::close(fd);
    if (got < 0) {
      std::error_code ec(errno, std::generic_category());
      return llvm::createStringError(ec, "cannot read '%s': %s", path.str().c_str(),
                                     ec.message().c_str());
    }
  }
  // ELF cores, plain or compressed (zstd, xz, gzip, lz4 frames as systemd-coredump stores
  // them); anything else is taken for an archive.
  bool elf = got >= 4 && std::memcmp(magic,
                                     "\x7f"
                                     "ELF",
                                     4) == 0;
  if (elf || detectCompression(llvm::ArrayRef<uint8_t>(magic, static_cast<size_t>(got))) !=
                 Compression::None) {
    auto core = CoreSnapshot::open(path, options);
    if (!core)
      return core.takeError();
    return std::unique_ptr<Snapshot>(std::move(*core));
  }
  auto archive = ArchiveSnapshot::open(path, options);
  if (!archive)
    return archive.takeError();
  return std::unique_ptr<Snapshot>(std::move(*archive));
}

} // namespace procsnap::analyze
