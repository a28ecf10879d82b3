#include "analyze/engines/snapshot_diff.h"

#include "analyze/engines/string_scanner.h"
#include "analyze/model/elf_module.h"

#include <llvm/Support/FormatVariadic.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_set>

namespace procsnap::analyze {

namespace {

// Symbols up to this size are read whole and their values shown whole when they are text or
// small enough; larger ones are compared in pieces and shown as a window of hex.
constexpr uint64_t kMaxWholeValueBytes = 4096;

bool isDataSection(llvm::StringRef name) {
  return name == ".data" || name == ".bss" || name.starts_with(".data.") ||
         name.starts_with(".bss.");
}

// A C string in a buffer: graphic characters (or newlines) up to a NUL. Empty counts.
std::optional<std::string> textValue(const std::vector<uint8_t>& bytes) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(bytes.data(), 0, bytes.size()));
  if (nul == nullptr)
    return std::nullopt;
  for (const uint8_t* p = bytes.data(); p != nul; ++p)
    if (!StringScanner::isGraphic(*p) && *p != '\n')
      return std::nullopt;
  return std::string(reinterpret_cast<const char*>(bytes.data()),
                     static_cast<size_t>(nul - bytes.data()));
}

std::string hexBytes(const uint8_t* bytes, size_t size) {
  std::string text;
  text.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    text += "0123456789abcdef"[bytes[i] >> 4];
    text += "0123456789abcdef"[bytes[i] & 0xf];
  }
  return text;
}

uint64_t littleEndian(const std::vector<uint8_t>& bytes) {
  uint64_t value = 0;
  for (size_t i = bytes.size(); i > 0; --i)
    value = (value << 8) | bytes[i - 1];
  return value;
}

llvm::Error readInto(const Snapshot& snapshot, uint64_t address, std::vector<uint8_t>& out) {
  auto read = snapshot.read(address, out);
  return read ? llvm::Error::success() : read.takeError();
}

class GlobalsDiffer final {
public:
  GlobalsDiffer(const AddressSpace& base, const AddressSpace& next,
                std::vector<AddressRange> changed)
      : base_(base), next_(next), changed_(std::move(changed)) {
    std::sort(changed_.begin(), changed_.end(),
              [](const AddressRange& a, const AddressRange& b) { return a.start < b.start; });
  }

  llvm::Expected<std::vector<GlobalDiff>> run() {
    std::vector<GlobalDiff> globals;
    for (const LoadedModule& module : base_.modules()) {
      const ElfModule* elf = module.elf();
      if (!elf || !module.load_bias)
        continue;
      const LoadedModule* other = counterpart(module);
      if (!other)
        continue;
      std::set<uint64_t> seen; // aliases share an address: report the first name only
      for (const ElfSymbol& symbol : elf->symbols()) {
        if (!symbol.is_object || symbol.size == 0)
          continue;
        const ElfSection* section = elf->sectionAt(symbol.address);
        if (!section || section->isTls() || !isDataSection(section->name))
          continue;
        uint64_t base_address = symbol.address + static_cast<uint64_t>(*module.load_bias);
        if (!touchesChange(base_address, symbol.size) || !seen.insert(base_address).second)
          continue;
        uint64_t new_address = symbol.address + static_cast<uint64_t>(*other->load_bias);
        GlobalDiff diff;
        diff.module_name = module.name;
        diff.module_path = module.path;
        diff.symbol = symbol.name;
        diff.section = section->name;
        diff.base_address = base_address;
        diff.new_address = new_address;
        diff.size = symbol.size;
        auto changed = compareSymbol(diff);
        if (!changed)
          return changed.takeError();
        if (*changed)
          globals.push_back(std::move(diff));
      }
    }
    return globals;
  }

private:
  const LoadedModule* counterpart(const LoadedModule& module) const {
    const auto& base_modules = base_.snapshot().metadata().modules;
    const auto& next_modules = next_.snapshot().metadata().modules;
    for (const LoadedModule& candidate : next_.modules()) {
      if (candidate.path != module.path || !candidate.load_bias)
        continue;
      const std::string& a = base_modules[module.module_index].build_id;
      const std::string& b = next_modules[candidate.module_index].build_id;
      if (!a.empty() && !b.empty() && a != b)
        continue; // another build: its symbols lie elsewhere
      return &candidate;
    }
    return nullptr;
  }

  bool touchesChange(uint64_t address, uint64_t size) const {
    auto it = std::upper_bound(changed_.begin(), changed_.end(), address,
                               [](uint64_t value, const AddressRange& r) { return value < r.end; });
    return it != changed_.end() && it->start < address + size;
  }

  // Fills diff's values; false when the symbol's bytes are equal.
  llvm::Expected<bool> compareSymbol(GlobalDiff& diff) {
    const Snapshot& base = base_.snapshot();
    const Snapshot& next = next_.snapshot();
    uint64_t first_difference = diff.size;
    for (uint64_t offset = 0; offset < diff.size;) {
      size_t piece = static_cast<size_t>(std::min(kCompareBlockBytes, diff.size - offset));
      old_bytes_.assign(piece, 0);
      new_bytes_.assign(piece, 0);
      if (llvm::Error error = readInto(base, diff.base_address + offset, old_bytes_))
        return error;
      if (llvm::Error error = readInto(next, diff.new_address + offset, new_bytes_))
        return error;
      for (size_t k = 0; k < piece; ++k) {
        if (old_bytes_[k] != new_bytes_[k]) {
          ++diff.bytes_changed;
          first_difference = std::min(first_difference, offset + k);
        }
      }
      offset += piece;
    }
    if (diff.bytes_changed == 0)
      return false;
    uint64_t size = diff.size;
    if (size == 1 || size == 2 || size == 4 || size == 8) {
      if (llvm::Error error = readWindow(diff.base_address, diff.new_address, size))
        return error;
      diff.format = ValueFormat::Integer;
      diff.old_integer = littleEndian(old_bytes_);
      diff.new_integer = littleEndian(new_bytes_);
      return true;
    }
    if (size <= kMaxWholeValueBytes) {
      if (llvm::Error error = readWindow(diff.base_address, diff.new_address, size))
        return error;
      std::optional<std::string> old_text = textValue(old_bytes_);
      std::optional<std::string> new_text = textValue(new_bytes_);
      if (old_text && new_text && !(old_text->empty() && new_text->empty())) {
        diff.format = ValueFormat::String;
        diff.old_text = std::move(*old_text);
        diff.new_text = std::move(*new_text);
        return true;
      }
    }
    diff.format = ValueFormat::Hex;
    uint64_t shown = std::min<uint64_t>(size, kMaxShownValueBytes);
    diff.shown_offset =
        size <= kMaxShownValueBytes ? 0 : std::min(first_difference / 16 * 16, size - shown);
    if (llvm::Error error = readWindow(diff.base_address + diff.shown_offset,
                                       diff.new_address + diff.shown_offset, shown))
      return error;
    diff.old_text = hexBytes(old_bytes_.data(), old_bytes_.size());
    diff.new_text = hexBytes(new_bytes_.data(), new_bytes_.size());
    return true;
  }

  llvm::Error readWindow(uint64_t base_address, uint64_t new_address, uint64_t size) {
    old_bytes_.assign(static_cast<size_t>(size), 0);
    new_bytes_.assign(static_cast<size_t>(size), 0);
    if (llvm::Error error = readInto(base_.snapshot(), base_address, old_bytes_))
      return error;
    return readInto(next_.snapshot(), new_address, new_bytes_);
  }

  const AddressSpace& base_;
  const AddressSpace& next_;
  std::vector<AddressRange> changed_; // at base addresses, sorted
  std::vector<uint8_t> old_bytes_;
  std::vector<uint8_t> new_bytes_;
};

// A stretch of one region to scan for strings, as an independent stream.
struct ScanWindow {
  uint64_t start = 0;
  uint64_t end = 0;
  int region_index = -1;
};

// Scans the stored bytes of each window of snapshot (unstored bytes count as zeros).
llvm::Error scanWindows(const Snapshot& snapshot, const std::vector<ScanWindow>& windows,
                        size_t min_length,
                        const std::function<void(const FoundString&, int)>& sink) {
  int region_index = -1;
  StringScanner scanner(StringEncoding::Ascii7, min_length,
                        [&](const FoundString& found) { sink(found, region_index); });
  std::vector<uint8_t> block;
  for (const ScanWindow& window : windows) {
    scanner.finish();
    region_index = window.region_index;
    scanner.begin(window.start);
    for (const StoredExtent& extent : snapshot.storedExtents(window.start, window.end)) {
      for (uint64_t address = extent.start; address < extent.end;) {
        size_t size = static_cast<size_t>(std::min(kCompareBlockBytes, extent.end - address));
        block.assign(size, 0);
        if (llvm::Error error = readInto(snapshot, address, block))
          return error;
        scanner.feed(address, std::span<const uint8_t>(block.data(), block.size()));
        address += size;
      }
    }
  }
  scanner.finish();
  return llvm::Error::success();
}

// Adds [start, end) clipped to [low, high), merged with the previous window when they touch.
void addWindow(std::vector<ScanWindow>& windows, uint64_t start, uint64_t end, uint64_t low,
               uint64_t high, int region_index) {
  start = std::max(start, low);
  end = std::min(end, high);
  if (start >= end)
    return;
  if (!windows.empty() && windows.back().region_index == region_index &&
      windows.back().end >= start) {
    windows.back().end = std::max(windows.back().end, end);
    return;
  }
  windows.push_back({start, end, region_index});
}

llvm::Error findNewStrings(const Snapshot& base, const Snapshot& next, const DiffOptions& options,
                           SnapshotDiff& diff) {
  // Changed pages are widened by a page on each side, clipped to the region, so a string
  // crossing into an unchanged page is seen whole (on both sides alike).
  uint64_t page = std::max<uint32_t>(1, next.metadata().host.page_size);
  std::vector<ScanWindow> base_windows, new_windows;
  for (const RegionDiff& region : diff.regions) {
    const RegionPair& pair = region.pair;
    if (region.removed()) {
      addWindow(base_windows, region.base->start, region.base->end, region.base->start,
                region.base->end, pair.base_index);
      continue;
    }
    if (region.added()) {
      addWindow(new_windows, region.next->start, region.next->end, region.next->start,
                region.next->end, pair.new_index);
      continue;
    }
    uint64_t delta = static_cast<uint64_t>(pair.delta);
    // The parts outside the compared overlap: grown (new) and shrunk (base) bytes.
    uint64_t low = std::max(region.base->start, region.next->start - delta);
    uint64_t high = std::min(region.base->end, region.next->end - delta);
    std::vector<std::pair<uint64_t, uint64_t>> base_ranges, new_ranges; // absolute, own side
    if (low < high) {
      for (const AddressRange& range : region.content.changed_ranges) {
        uint64_t from = range.start >= low + page ? range.start - page : low;
        uint64_t to = std::min(high, range.end + page);
        base_ranges.push_back({from, to});
        new_ranges.push_back({from + delta, to + delta});
      }
      base_ranges.insert(base_ranges.begin(), {region.base->start, low});
      base_ranges.push_back({high, region.base->end});
      new_ranges.insert(new_ranges.begin(), {region.next->start, low + delta});
      new_ranges.push_back({high + delta, region.next->end});
    } else {
      base_ranges.push_back({region.base->start, region.base->end});
      new_ranges.push_back({region.next->start, region.next->end});
    }
    for (const auto& [from, to] : base_ranges)
      addWindow(base_windows, from, to, region.base->start, region.base->end, pair.base_index);
    for (const auto& [from, to] : new_ranges)
      addWindow(new_windows, from, to, region.next->start, region.next->end, pair.new_index);
  }
  std::unordered_set<std::string> base_texts;
  if (llvm::Error error =
          scanWindows(base, base_windows, options.min_string_length,
                      [&](const FoundString& found, int) { base_texts.insert(found.text); }))
    return error;
  const auto& regions = next.metadata().regions;
  auto sink = [&](const FoundString& found, int region_index) {
    if (base_texts.count(found.text) != 0)
      return;
    if (diff.new_strings.size() >= options.max_strings) {
      ++diff.new_strings_omitted;
      return;
    }
    diff.new_strings.push_back({found.offset, regions[static_cast<size_t>(region_index)].kind,
                                found.length, found.text, found.truncated});
  };
  std::sort(new_windows.begin(), new_windows.end(),
            [](const ScanWindow& a, const ScanWindow& b) { return a.start < b.start; });
  return scanWindows(next, new_windows, options.min_string_length, sink);
}

const ModuleRecord* executableModule(const SnapshotMetadata& metadata) {
  for (const ModuleRecord& module : metadata.modules)
    if (module.path == metadata.process.exe)
      return &module;
  return nullptr;
}

} // namespace

int64_t RegionDiff::sizeDelta() const {
  int64_t before = base ? static_cast<int64_t>(base->size()) : 0;
  int64_t after = next ? static_cast<int64_t>(next->size()) : 0;
  return after - before;
}

bool RegionDiff::permissionsChanged() const {
  if (!base || !next)
    return false;
  const Permissions& a = base->perms;
  const Permissions& b = next->perms;
  return a.read != b.read || a.write != b.write || a.execute != b.execute ||
         (sharing_known && a.shared != b.shared);
}

bool RegionDiff::layoutChanged() const {
  return added() || removed() || base->start != next->start || base->end != next->end ||
         permissionsChanged() || kindChanged();
}

std::vector<std::string> RegionDiff::changes() const {
  if (added())
    return {"added"};
  if (removed())
    return {"removed"};
  std::vector<std::string> words;
  int64_t delta = sizeDelta();
  if (delta > 0)
    words.push_back("grown");
  else if (delta < 0)
    words.push_back("shrunk");
  else if (base->start != next->start)
    words.push_back("moved");
  if (permissionsChanged())
    words.push_back("permissions");
  if (kindChanged())
    words.push_back("kind");
  if (contentsChanged())
    words.push_back("contents");
  return words;
}

std::string_view toString(ValueFormat format) {
  switch (format) {
  case ValueFormat::Integer:
    return "integer";
  case ValueFormat::String:
    return "string";
  case ValueFormat::Hex:
    return "hex";
  }
  return "hex";
}

KindTotals totalsByKind(const SnapshotMetadata& metadata) {
  KindTotals totals{};
  for (const RegionRecord& region : metadata.regions) {
    size_t kind = static_cast<size_t>(region.kind);
    if (kind >= totals.size())
      continue; // a kind this build does not know: counted nowhere rather than misfiled
    KindTotal& total = totals[kind];
    ++total.regions;
    total.mapped_bytes += region.map().size();
    std::optional<uint64_t> rss_kib = region.smaps.field("Rss");
    total.rss_bytes = total.rss_bytes && rss_kib
                          ? std::optional<uint64_t>(*total.rss_bytes + *rss_kib * 1024)
                          : std::nullopt;
    for (const PageRun& run : region.pages)
      if (run.state == PageState::Stored)
        total.stored_bytes += run.end - run.start;
  }
  return totals;
}

bool SnapshotDiff::differs() const {
  return std::any_of(regions.begin(), regions.end(),
                     [](const RegionDiff& region) { return region.changed(); });
}

ContentDiff SnapshotDiff::contentTotals() const {
  ContentDiff sum;
  for (const RegionDiff& region : regions) {
    sum.bytes_compared += region.content.bytes_compared;
    sum.bytes_changed += region.content.bytes_changed;
    sum.pages_changed += region.content.pages_changed;
    sum.bytes_not_compared += region.content.bytes_not_compared;
    sum.chunks_equal_by_digest += region.content.chunks_equal_by_digest;
    sum.chunks_different_by_digest += region.content.chunks_different_by_digest;
    sum.bytes_read += region.content.bytes_read;
  }
  return sum;
}

std::vector<std::string> identityWarnings(const SnapshotMetadata& base,
                                          const SnapshotMetadata& next) {
  std::vector<std::string> warnings;
  if (base.process.pid != next.process.pid)
    warnings.push_back(llvm::formatv("the snapshots are of different processes (pid {0} and "
                                     "{1}): comparing what is comparable",
                                     base.process.pid, next.process.pid)
                           .str());
  if (base.process.exe != next.process.exe) {
    warnings.push_back(llvm::formatv("the snapshots are of different executables ('{0}' and "
                                     "'{1}')",
                                     base.process.exe, next.process.exe)
                           .str());
  } else {
    const ModuleRecord* a = executableModule(base);
    const ModuleRecord* b = executableModule(next);
    if (a && b && a->build_id != b->build_id)
      warnings.push_back(llvm::formatv("the executable '{0}' differs (build-id {1} and {2})",
                                       base.process.exe, a->build_id.empty() ? "none" : a->build_id,
                                       b->build_id.empty() ? "none" : b->build_id)
                             .str());
  }
  return warnings;
}

llvm::Expected<SnapshotDiff> diffSnapshots(const Snapshot& base, const AddressSpace* base_space,
                                           const Snapshot& next, const AddressSpace* next_space,
                                           const DiffOptions& options) {
  auto give = [](const AddressSpace* space) {
    return [space]() -> llvm::Expected<const AddressSpace*> { return space; };
  };
  return diffSnapshots(base, give(base_space), next, give(next_space), options);
}

llvm::Expected<SnapshotDiff>
diffSnapshots(const Snapshot& base, const AddressSpaceProvider& base_space, const Snapshot& next,
              const AddressSpaceProvider& next_space, const DiffOptions& options) {
  SnapshotDiff diff;
  const SnapshotMetadata& a = base.metadata();
  const SnapshotMetadata& b = next.metadata();
  diff.page_size = std::max<uint64_t>(1, a.host.page_size);
  diff.warnings = identityWarnings(a, b);
  diff.base_totals = totalsByKind(a);
  diff.new_totals = totalsByKind(b);
  std::vector<AddressRange> changed; // every changed page, at base addresses
  for (const RegionPair& pair : matchRegions(a.regions, b.regions)) {
    RegionDiff region;
    region.pair = pair;
    region.sharing_known = base.sourceKind() != "core" && next.sourceKind() != "core";
    if (pair.base_index >= 0) {
      const RegionRecord& record = a.regions[static_cast<size_t>(pair.base_index)];
      region.base = record.map();
      region.base_kind = record.kind;
    }
    if (pair.new_index >= 0) {
      const RegionRecord& record = b.regions[static_cast<size_t>(pair.new_index)];
      region.next = record.map();
      region.next_kind = record.kind;
    }
    if (pair.matched()) {
      auto content = compareRegionContents(base, next, pair);
      if (!content)
        return content.takeError();
      region.content = std::move(*content);
      // Globals live in a module's data mapping or the .bss mapping after it.
      if (region.base_kind == RegionKind::Data || region.base_kind == RegionKind::Bss)
        changed.insert(changed.end(), region.content.changed_ranges.begin(),
                       region.content.changed_ranges.end());
    }
    diff.regions.push_back(std::move(region));
  }
  if (!changed.empty()) {
    llvm::Expected<const AddressSpace*> base_symbols = base_space ? base_space() : nullptr;
    if (!base_symbols)
      return base_symbols.takeError();
    llvm::Expected<const AddressSpace*> next_symbols = next_space ? next_space() : nullptr;
    if (!next_symbols)
      return next_symbols.takeError();
    if (*base_symbols && *next_symbols) {
      GlobalsDiffer differ(**base_symbols, **next_symbols, std::move(changed));
      auto globals = differ.run();
      if (!globals)
        return globals.takeError();
      diff.globals = std::move(*globals);
    }
  }
  if (options.strings) {
    diff.strings_searched = true;
    if (llvm::Error error = findNewStrings(base, next, options, diff))
      return error;
  }
  return diff;
}

} // namespace procsnap::analyze
