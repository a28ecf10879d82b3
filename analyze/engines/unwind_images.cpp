#include "analyze/engines/unwind_images.h"

#include <algorithm>
#include <cstring>

namespace procsnap::analyze {

namespace {

// An image rebuilt from memory never grows past this, nor past twice its mappings' bytes (plus
// 64 KiB of slack per mapping): a damaged or hostile snapshot may claim any file offset, while
// a real module's mappings cover its file but for alignment gaps.
constexpr uint64_t kMaxImageBytes = 1ull << 30;
constexpr uint64_t kSlackPerMapping = 1u << 16;

bool isElf64(llvm::ArrayRef<uint8_t> bytes) {
  return bytes.size() >= 64 && std::memcmp(bytes.data(),
                                           "\x7f"
                                           "ELF\x02",
                                           5) == 0;
}

// The file-backed mappings of [start, end) of region_indices, laid out by file offset. The
// section headers are cleared: they point at file bytes no mapping holds, and libdw then finds
// .eh_frame through PT_GNU_EH_FRAME.
std::vector<uint8_t> imageFromMemory(const Snapshot& snapshot, llvm::ArrayRef<int> region_indices,
                                     bool keep_section_headers, std::vector<std::string>& warnings,
                                     const std::string& name) {
  const auto& regions = snapshot.metadata().regions;
  uint64_t size = 0, mapped = 0;
  for (int index : region_indices) {
    const MapsEntry& map = regions[static_cast<size_t>(index)].map();
    if (map.isAnonymous() && !map.isPseudo())
      continue;
    if (map.offset > kMaxImageBytes)
      return {};
    size = std::max(size, map.offset + map.size());
    mapped += map.size() + kSlackPerMapping;
  }
  if (size == 0 || size > kMaxImageBytes || size > 2 * mapped)
    return {};
  std::vector<uint8_t> image(size);
  for (int index : region_indices) {
    const MapsEntry& map = regions[static_cast<size_t>(index)].map();
    if (map.isAnonymous() && !map.isPseudo())
      continue;
    auto read = snapshot.read(
        map.start, llvm::MutableArrayRef<uint8_t>(image.data() + map.offset, map.size()));
    if (!read) {
      warnings.push_back("unwinding: module '" + name + "': " + llvm::toString(read.takeError()));
      return {};
    }
  }
  if (!isElf64(image))
    return {};
  if (!keep_section_headers) {
    std::memset(image.data() + 0x28, 0, 8); // e_shoff
    std::memset(image.data() + 0x3c, 0, 4); // e_shnum, e_shstrndx
  }
  return image;
}

void addImage(UnwindImages& out, std::string name, uint64_t low, uint64_t high,
              std::vector<uint8_t> bytes) {
  if (bytes.empty() || high <= low)
    return;
  out.bytes.push_back(std::move(bytes));
  out.images.push_back({std::move(name), low, high, out.bytes.back()});
}

} // namespace

UnwindImages buildUnwindImages(const AddressSpace& space, std::vector<std::string>& warnings) {
  UnwindImages out;
  const Snapshot& snapshot = space.snapshot();
  const auto& regions = snapshot.metadata().regions;
  for (const LoadedModule& module : space.modules()) {
    if (module.region_indices.empty())
      continue;
    uint64_t low = UINT64_MAX, high = 0;
    for (int index : module.region_indices) {
      low = std::min(low, regions[static_cast<size_t>(index)].map().start);
      high = std::max(high, regions[static_cast<size_t>(index)].map().end);
    }
    std::vector<uint8_t> bytes;
    // A sketch has the symbol tables but not .eh_frame: memory is better then.
    if (module.elf() && module.located->where != "sketch") {
      llvm::StringRef file = module.elf()->buffer().getBuffer();
      bytes.assign(file.begin(), file.end());
    } else {
      bytes = imageFromMemory(snapshot, module.region_indices, /*keep_section_headers=*/false,
                              warnings, module.path);
    }
    addImage(out, module.path, low, high, std::move(bytes));
  }
  // The vdso has no file; its mapping is a whole ELF image, section headers included.
  for (size_t i = 0; i < regions.size(); ++i) {
    if (regions[i].map().path != "[vdso]")
      continue;
    std::vector<int> indices = {static_cast<int>(i)};
    addImage(out, "[vdso]", regions[i].map().start, regions[i].map().end,
             imageFromMemory(snapshot, indices, /*keep_section_headers=*/true, warnings, "[vdso]"));
  }
  return out;
}

} // namespace procsnap::analyze
