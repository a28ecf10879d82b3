#include "analyze/model/snapshot.h"

#include "analyze/sources/archive_snapshot.h"
#include "analyze/sources/compressed_source.h"
#include "analyze/sources/core_snapshot.h"

#include <algorithm>
#include <cctype>
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

void ReadResult::addRun(uint64_t start, uint64_t stop, bool mapped, PageState state,
                        int region_index) {
  if (start >= stop)
    return;
  if (!runs.empty()) {
    ReadRun& last = runs.back();
    if (last.end == start && last.mapped == mapped && last.state == state &&
        last.region_index == region_index) {
      last.end = stop;
      return;
    }
  }
  runs.push_back({start, stop, mapped, state, region_index});
}

llvm::Expected<ReadResult> readByPageRuns(const SnapshotMetadata& metadata, uint64_t address,
                                          llvm::MutableArrayRef<uint8_t> out, CopyPiece copy) {
  ReadResult result;
  if (out.empty())
    return result;
  if (address + out.size() < address)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "range 0x%llx + %zu runs past the end of the address space",
                                   static_cast<unsigned long long>(address), out.size());
  std::fill(out.begin(), out.end(), 0);
  const uint64_t end = address + out.size();
  const auto& regions = metadata.regions;
  uint64_t cursor = address;
  auto region_it = std::upper_bound(
      regions.begin(), regions.end(), cursor,
      [](uint64_t value, const RegionRecord& region) { return value < region.map().end; });
  for (; cursor < end && region_it != regions.end(); ++region_it) {
    const RegionRecord& region = *region_it;
    const int region_index = static_cast<int>(region_it - regions.begin());
    if (region.map().start >= end)
      break;
    if (region.map().start > cursor) {
      result.addRun(cursor, region.map().start, false, PageState::NotPresent, -1);
      cursor = region.map().start;
    }
    const uint64_t region_stop = std::min(end, region.map().end);
    // Page runs are sorted and disjoint: start at the first one ending after cursor (a
    // linear walk from the region start made reading a big region quadratic).
    auto first_run =
        std::upper_bound(region.pages.begin(), region.pages.end(), cursor,
                         [](uint64_t value, const PageRun& run) { return value < run.end; });
    for (auto run_it = first_run; run_it != region.pages.end(); ++run_it) {
      const PageRun& run = *run_it;
      if (run.start >= region_stop)
        break;
      if (run.start > cursor) { // a gap in the page map: nothing is known of it
        result.addRun(cursor, run.start, true, PageState::NotPresent, region_index);
        cursor = run.start;
      }
      const uint64_t stop = std::min(region_stop, run.end);
      if (holdsBytes(run.state)) {
        if (llvm::Error error = copy(region_index, run.state, cursor, stop,
                                     out.data() + (cursor - address), result))
          return error;
      } else {
        result.addRun(cursor, stop, true, run.state, region_index);
      }
      cursor = stop;
    }
    if (cursor < region_stop) {
      result.addRun(cursor, region_stop, true, PageState::NotPresent, region_index);
      cursor = region_stop;
    }
  }
  result.addRun(cursor, end, false, PageState::NotPresent, -1);
  return result;
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

llvm::Error toLlvmError(const procsnap::Result<void>& result) {
  return result ? llvm::Error::success() : toLlvmError(result.error());
}

namespace {

// strerror's "No such file or directory" reads lowercase after our "cannot open 'x': ".
std::string lowercaseReason(const std::error_code& ec) {
  std::string reason = ec.message();
  if (!reason.empty())
    reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
  return reason;
}

} // namespace

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
                                     lowercaseReason(ec).c_str());
    }
    got = ::read(fd, magic, sizeof magic);
    ::close(fd);
    if (got < 0) {
      std::error_code ec(errno, std::generic_category());
      return llvm::createStringError(ec, "cannot read '%s': %s", path.str().c_str(),
                                     lowercaseReason(ec).c_str());
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
