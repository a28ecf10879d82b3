// Fuzzes the ELF core importer (analyze/sources/core_snapshot.h): the input is a core file, parsed
// from memory as CoreSnapshot::create does for a file that open() mapped. Module files are
// never looked up on this host (use_original_paths off, no sysroot, no debug dirs), so a run
// depends on the input alone. Every region the core yields is then read at its start and end,
// and its stored extents listed.
#include "fuzz/fuzz_core_input.h"

#include <llvm/Support/Error.h>

namespace {

using namespace procsnap;

// Regions read per core: enough for any seed, bounded for speed.
constexpr size_t kMaxRegionsRead = 64;
// Bytes read at each end of a region.
constexpr size_t kReadBytes = 64;

void readAt(const analyze::CoreSnapshot& core, uint64_t address) {
  uint8_t buffer[kReadBytes];
  auto read = core.read(address, buffer);
  if (!read) {
    fuzz::checkErrorMessage(llvm::toString(read.takeError()));
    return;
  }
  if (read->bytes_stored > sizeof buffer)
    fuzz::propertyFailed("a read stored more bytes than asked", std::to_string(address));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<analyze::CoreSnapshot> core = fuzz::openFuzzCore(data, size);
  if (!core)
    return 0;
  const analyze::CoreSnapshot& snapshot = *core;
  const SnapshotMetadata& metadata = snapshot.metadata();
  for (const auto& warning : metadata.warnings)
    fuzz::checkErrorMessage(warning);
  for (size_t i = 0; i < metadata.regions.size() && i < kMaxRegionsRead; ++i) {
    const MapsEntry& map = metadata.regions[i].map();
    readAt(snapshot, map.start);
    if (map.end - map.start > kReadBytes)
      readAt(snapshot, map.end - kReadBytes);
    uint64_t previous_end = 0;
    for (const auto& extent : snapshot.storedExtents(map.start, map.end)) {
      if (extent.start < previous_end || extent.end <= extent.start || extent.start < map.start ||
          extent.end > map.end)
        fuzz::propertyFailed("stored extents unsorted or outside their region",
                             std::to_string(extent.start));
      previous_end = extent.end;
    }
  }
  for (size_t i = 0; i < metadata.modules.size() && i < kMaxRegionsRead; ++i) {
    auto image = snapshot.moduleImage(i);
    if (!image)
      fuzz::checkErrorMessage(llvm::toString(image.takeError()));
  }
  return 0;
}
