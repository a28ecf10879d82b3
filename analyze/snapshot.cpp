#include "analyze/snapshot.h"

#include "analyze/archive_snapshot.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace procsnap::analyze {

Snapshot::~Snapshot() = default;

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
  char magic[4] = {};
  {
    int fd = ::open(path.str().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::error_code ec(errno, std::generic_category());
      return llvm::createStringError(ec, "cannot open '%s': %s", path.str().c_str(),
                                     ec.message().c_str());
    }
    ssize_t got = ::read(fd, magic, sizeof magic);
    ::close(fd);
    if (got < 0) {
      std::error_code ec(errno, std::generic_category());
      return llvm::createStringError(ec, "cannot read '%s': %s", path.str().c_str(),
                                     ec.message().c_str());
    }
  }
  if (std::memcmp(magic,
                  "\x7f"
                  "ELF",
                  4) == 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "cannot open '%s': ELF core files are not supported yet",
                                   path.str().c_str());
  auto archive = ArchiveSnapshot::open(path, options);
  if (!archive)
    return archive.takeError();
  return std::unique_ptr<Snapshot>(std::move(*archive));
}

} // namespace procsnap::analyze
