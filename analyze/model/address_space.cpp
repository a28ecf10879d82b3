#include "analyze/model/address_space.h"

#include <llvm/Support/Path.h>

#include <algorithm>
#include <map>
#include <set>

namespace procsnap::analyze {

namespace {

constexpr const char* kUnknownLabel = "<?>";

bool isAnonymous(const RegionRecord& region) {
  return region.map().path.empty() && region.map().inode == 0;
}

// Runtime end of the module's highest PT_LOAD (vaddr + memsz + bias).
std::optional<uint64_t> loadEnd(const ElfModule& elf, int64_t bias) {
  std::optional<uint64_t> end;
  for (const ElfSegment& segment : elf.segments()) {
    if (segment.isLoad())
      end = std::max(end.value_or(0), segment.vaddr + segment.memsz + static_cast<uint64_t>(bias));
  }
  return end;
}

// The label of the byte at address in region, for a module with ELF data and a known bias.
// See address_space.h for the order: section, file headers, beyond the file, padding inside
// a segment, unmapped.
std::pair<std::string, int> labelAt(uint64_t address, const RegionRecord& region,
                                    const ElfModule& elf, int64_t bias, uint64_t file_size) {
  uint64_t vaddr = address - static_cast<uint64_t>(bias);
  if (const ElfSection* section = elf.sectionAt(vaddr))
    return {section->name, static_cast<int>(section - elf.sections().data())};
  if (!isAnonymous(region)) {
    uint64_t offset = region.map().offset + (address - region.map().start);
    const ElfFileLayout& layout = elf.layout();
    if (file_size > 0 && offset >= file_size)
      return {"[beyond file]", -1};
    if (offset < layout.header_size)
      return {"[ELF header]", -1};
    if (offset >= layout.program_headers_offset &&
        offset - layout.program_headers_offset < layout.program_headers_size)
      return {"[program headers]", -1};
    if (offset >= layout.section_headers_offset &&
        offset - layout.section_headers_offset < layout.section_headers_size)
      return {"[section headers]", -1};
  }
  for (const ElfSegment& segment : elf.segments()) {
    if (segment.isLoad() && vaddr >= segment.vaddr && vaddr - segment.vaddr < segment.memsz)
      return {"[padding]", -1};
  }
  return {"[unmapped]", -1};
}

void computeSpans(LoadedModule& module, const std::vector<RegionRecord>& regions,
                  uint64_t file_size) {
  const ElfModule* elf = module.elf();
  for (int region_index : module.region_indices) {
    const RegionRecord& region = regions[static_cast<size_t>(region_index)];
    const uint64_t start = region.map().start;
    const uint64_t end = region.map().end;
    if (!elf || !module.load_bias) {
      module.spans.push_back({start, end, kUnknownLabel, true, -1, region_index});
      continue;
    }
    const uint64_t bias = static_cast<uint64_t>(*module.load_bias);
    std::set<uint64_t> cuts = {start, end};
    auto cut = [&](uint64_t at) {
      if (at > start && at < end)
        cuts.insert(at);
    };
    for (const ElfSection& section : elf->sections()) {
      if (!section.isAlloc() || section.size == 0)
        continue;
      cut(section.address + bias);
      cut(section.address + section.size + bias);
    }
    for (const ElfSegment& segment : elf->segments()) {
      if (!segment.isLoad())
        continue;
      cut(segment.vaddr + bias);
      cut(segment.vaddr + segment.memsz + bias);
    }
    if (!isAnonymous(region)) {
      const ElfFileLayout& layout = elf->layout();
      auto cutOffset = [&](uint64_t offset) {
        if (offset >= region.map().offset)
          cut(start + (offset - region.map().offset));
      };
      cutOffset(layout.header_size);
      cutOffset(layout.program_headers_offset);
      cutOffset(layout.program_headers_offset + layout.program_headers_size);
      cutOffset(layout.section_headers_offset);
      cutOffset(layout.section_headers_offset + layout.section_headers_size);
      cutOffset(file_size);
    }
    for (auto it = cuts.begin(); std::next(it) != cuts.end(); ++it) {
      uint64_t piece_start = *it;
      uint64_t piece_end = *std::next(it);
      auto [label, section_index] =
          labelAt(piece_start, region, *elf, *module.load_bias, file_size);
      if (!module.spans.empty() && module.spans.back().end == piece_start &&
          module.spans.back().label == label && module.spans.back().region_index == region_index) {
        module.spans.back().end = piece_end;
        continue;
      }
      bool synthetic = section_index < 0;
      module.spans.push_back(
          {piece_start, piece_end, std::move(label), synthetic, section_index, region_index});
    }
  }
}

} // namespace

std::optional<uint64_t> LoadedModule::runtime(uint64_t vaddr) const {
  if (!load_bias)
    return std::nullopt;
  return vaddr + static_cast<uint64_t>(*load_bias);
}

llvm::Expected<AddressSpace> AddressSpace::build(const Snapshot& snapshot, ModuleLocator& locator) {
  AddressSpace space;
  space.snapshot_ = &snapshot;
  const SnapshotMetadata& metadata = snapshot.metadata();
  const auto& regions = metadata.regions;
  space.module_of_region_.assign(regions.size(), -1);

  // The main executable first, so that unqualified symbol lookups prefer it.
  std::vector<size_t> order;
  for (size_t i = 0; i < metadata.modules.size(); ++i)
    order.push_back(i);
  std::stable_partition(order.begin(), order.end(), [&](size_t i) {
    return !metadata.process.exe.empty() && metadata.modules[i].path == metadata.process.exe;
  });

  // The file mappings of each path, in address order, built once: a module takes the ones of
  // its path, so the build is O((modules + regions) log regions) however many there are.
  std::map<llvm::StringRef, std::vector<int>> regions_by_path;
  for (size_t r = 0; r < regions.size(); ++r) {
    const MapsEntry& map = regions[r].map();
    if (!map.isPseudo())
      regions_by_path[map.path].push_back(static_cast<int>(r));
  }

  for (size_t module_index : order) {
    const ModuleRecord& record = metadata.modules[module_index];
    LoadedModule module;
    module.module_index = module_index;
    module.path = record.path;
    module.name = llvm::sys::path::filename(record.path).str();
    int self = static_cast<int>(space.modules_.size());
    std::vector<MapsEntry> mappings;
    // The first module of a path takes every mapping of it not already taken (as the .bss
    // mapping of an earlier module); later records of the same path find none left.
    if (auto same_path = regions_by_path.find(record.path); same_path != regions_by_path.end()) {
      for (int r : same_path->second) {
        if (space.module_of_region_[static_cast<size_t>(r)] >= 0)
          continue;
        module.region_indices.push_back(r);
        mappings.push_back(regions[static_cast<size_t>(r)].map());
      }
      regions_by_path.erase(same_path);
    }
    module.located = locator.locate(module_index);
    if (module.elf())
      module.load_bias = module.elf()->loadBias(mappings);

    // The anonymous mapping right after the file's last mapping holds the rest of .bss (the
    // kernel maps it when p_memsz goes past the file's pages).
    if (!module.region_indices.empty()) {
      size_t next = static_cast<size_t>(module.region_indices.back()) + 1;
      std::optional<uint64_t> end;
      if (module.elf() && module.load_bias)
        end = loadEnd(*module.elf(), *module.load_bias);
      while (next < regions.size() && isAnonymous(regions[next]) &&
             regions[next].map().start == regions[next - 1].map().end &&
             space.module_of_region_[next] < 0 &&
             (end ? regions[next].map().start < *end : regions[next].kind == RegionKind::Bss)) {
        module.region_indices.push_back(static_cast<int>(next));
        ++next;
      }
    }
    for (int r : module.region_indices)
      space.module_of_region_[static_cast<size_t>(r)] = self;

    uint64_t file_size = record.file_size;
    if (file_size == 0 && module.located && module.located->where != "debug-dir")
      file_size = module.elf()->buffer().getBufferSize();
    computeSpans(module, regions, file_size);
    if (module.elf() && module.load_bias) {
      if (const ElfSection* bss = module.elf()->findSection(".bss"); bss && bss->isNoBits())
        module.bss =
            AddressRange{*module.runtime(bss->address), *module.runtime(bss->address) + bss->size};
    }
    space.modules_.push_back(std::move(module));
  }
  return space;
}

int AddressSpace::moduleOfRegion(int region_index) const {
  if (region_index < 0 || static_cast<size_t>(region_index) >= module_of_region_.size())
    return -1;
  return module_of_region_[static_cast<size_t>(region_index)];
}

AddressInfo AddressSpace::lookup(uint64_t address) const {
  AddressInfo info;
  info.region_index = snapshot_->findRegion(address);
  if (info.region_index < 0)
    return info;
  info.region = &snapshot_->metadata().regions[static_cast<size_t>(info.region_index)];
  info.module_index = moduleOfRegion(info.region_index);
  if (info.module_index < 0)
    return info;
  const LoadedModule& module = modules_[static_cast<size_t>(info.module_index)];
  info.module_name = module.name;
  auto span =
      std::upper_bound(module.spans.begin(), module.spans.end(), address,
                       [](uint64_t value, const SectionSpan& s) { return value < s.start; });
  if (span != module.spans.begin() && std::prev(span)->end > address)
    info.section = std::prev(span)->label;
  const ElfModule* elf = module.elf();
  if (!elf || !module.load_bias) {
    info.section = kUnknownLabel;
    return info;
  }
  uint64_t vaddr = address - static_cast<uint64_t>(*module.load_bias);
  info.file_vaddr = vaddr;
  const auto& segments = elf->segments();
  for (size_t i = 0; i < segments.size(); ++i) {
    const ElfSegment& segment = segments[i];
    if (segment.isLoad() && vaddr >= segment.vaddr && vaddr - segment.vaddr < segment.memsz) {
      info.segment = "LOAD[" + std::to_string(i) + "] " + segment.permissions();
      break;
    }
  }
  if (const ElfSymbol* symbol = module.located->symbolAt(vaddr)) {
    info.symbol = symbol->name;
    info.symbol_address = *module.runtime(symbol->address);
    info.symbol_offset = vaddr - symbol->address;
    info.symbol_size = symbol->size;
  }
  return info;
}

int AddressSpace::findModule(llvm::StringRef name) const {
  const SnapshotMetadata& metadata = snapshot_->metadata();
  if (name == "exe" || name == "main") {
    for (size_t i = 0; i < modules_.size(); ++i) {
      if (modules_[i].path == metadata.process.exe)
        return static_cast<int>(i);
    }
    return modules_.empty() ? -1 : 0;
  }
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (modules_[i].path == name)
      return static_cast<int>(i);
  }
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (modules_[i].name == name)
      return static_cast<int>(i);
  }
  int found = -1;
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (llvm::StringRef(modules_[i].name).starts_with(name)) {
      if (found >= 0)
        return -1; // ambiguous
      found = static_cast<int>(i);
    }
  }
  return found;
}

std::vector<SymbolLocation> AddressSpace::findSymbol(llvm::StringRef name) const {
  std::vector<SymbolLocation> found;
  int only_module = -1;
  if (size_t bang = name.find('!'); bang != llvm::StringRef::npos) {
    only_module = findModule(name.take_front(bang));
    if (only_module < 0)
      return found;
    name = name.drop_front(bang + 1);
  }
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (only_module >= 0 && static_cast<int>(i) != only_module)
      continue;
    const LoadedModule& module = modules_[i];
    if (!module.elf() || !module.load_bias)
      continue;
    for (const ElfSymbol* symbol : module.located->findSymbols(name))
      found.push_back({static_cast<int>(i), symbol->name, *module.runtime(symbol->address),
                       symbol->size, symbol->is_function});
  }
  return found;
}

std::optional<AddressRange> AddressSpace::findSection(llvm::StringRef module_name,
                                                      llvm::StringRef section_name) const {
  int index = findModule(module_name);
  if (index < 0)
    return std::nullopt;
  const LoadedModule& module = modules_[static_cast<size_t>(index)];
  if (!module.elf() || !module.load_bias)
    return std::nullopt;
  const ElfSection* section = module.elf()->findSection(section_name);
  if (!section || !section->isAlloc())
    return std::nullopt;
  return AddressRange{*module.runtime(section->address),
                      *module.runtime(section->address) + section->size};
}

} // namespace procsnap::analyze
