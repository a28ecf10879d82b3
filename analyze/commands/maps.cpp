// maps: the regions of a snapshot like pmap -X (range, size in KiB and pages, permissions,
// offset, device, inode, smaps figures, kind, path) with the bytes the snapshot stores, and
// totals by kind.
#include "analyze/cli/address_expression.h"
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/source_runner.h"

#include <llvm/ADT/StringExtras.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/FormatVariadic.h>

#include <map>
#include <optional>
#include <set>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::list<std::string> maps_sources(cl::Positional, cl::OneOrMore, cl::desc("<source>..."),
                                   cl::sub(subcommand("maps")), cl::cat(commandCategory()));
cl::list<std::string> maps_kinds("kind",
                                 cl::desc("Only regions of these kinds (comma-separated, "
                                          "repeatable): text, rodata, data, bss, heap, ..."),
                                 cl::value_desc("KIND"), cl::CommaSeparated,
                                 cl::sub(subcommand("maps")), cl::cat(commandCategory()));
cl::opt<std::string> maps_path("path", cl::desc("Only regions whose path contains TEXT"),
                               cl::value_desc("TEXT"), cl::sub(subcommand("maps")),
                               cl::cat(commandCategory()));
cl::opt<std::string> maps_address("address", cl::desc("Only the region containing ADDR"),
                                  cl::value_desc("ADDR"), cl::sub(subcommand("maps")),
                                  cl::cat(commandCategory()));

struct MapsOptions {
  std::set<RegionKind> kinds; // empty: all
  std::string path_substring;
  std::optional<uint64_t> address;
};

uint64_t kib(const RegionRecord& region, llvm::StringRef field) {
  return region.smaps.field(field.str()).value_or(0);
}

Printer::Cell smapsCell(const RegionRecord& region, llvm::StringRef field) {
  if (auto value = region.smaps.field(field.str()))
    return *value;
  return {};
}

struct Totals {
  uint64_t regions = 0, bytes = 0, rss_kib = 0, pss_kib = 0, dirty_kib = 0, swap_kib = 0,
           stored = 0;
  void add(const RegionRecord& region, uint64_t stored_bytes) {
    ++regions;
    bytes += region.map().size();
    rss_kib += kib(region, "Rss");
    pss_kib += kib(region, "Pss");
    dirty_kib += kib(region, "Private_Dirty") + kib(region, "Shared_Dirty");
    swap_kib += kib(region, "Swap");
    stored += stored_bytes;
  }
};

llvm::Error printMaps(const Snapshot& snapshot, const MapsOptions& options, Printer& printer) {
  const SnapshotMetadata& metadata = snapshot.metadata();
  const uint64_t page_size = metadata.host.page_size ? metadata.host.page_size : 4096;
  using Type = Printer::Column::Type;
  using Align = Printer::Column::Align;
  Printer::Table table({{"START", "start", Type::Hex, Align::Left},
                        {"END", "end", Type::Hex, Align::Left},
                        {"PERM", "perms"},
                        {"OFFSET", "offset", Type::Hex, Align::Right},
                        {"DEVICE", "device"},
                        {"INODE", "inode", Type::Unsigned, Align::Right},
                        {"SIZE-KIB", "size_kib", Type::Unsigned, Align::Right},
                        {"PAGES", "pages", Type::Unsigned, Align::Right},
                        {"RSS", "rss_kib", Type::Unsigned, Align::Right},
                        {"PSS", "pss_kib", Type::Unsigned, Align::Right},
                        {"DIRTY", "dirty_kib", Type::Unsigned, Align::Right},
                        {"SWAP", "swap_kib", Type::Unsigned, Align::Right},
                        {"STORED", "stored_bytes", Type::Unsigned, Align::Right},
                        {"KIND", "kind"},
                        {"MAPPING", "path"}});
  std::map<RegionKind, Totals> by_kind;
  Totals all;
  for (const RegionRecord& region : metadata.regions) {
    const MapsEntry& map = region.map();
    if (!options.kinds.empty() && !options.kinds.count(region.kind))
      continue;
    if (!options.path_substring.empty() &&
        map.path.find(options.path_substring) == std::string::npos)
      continue;
    if (options.address && !(*options.address >= map.start && *options.address < map.end))
      continue;
    uint64_t stored = 0;
    for (const StoredExtent& extent : snapshot.storedExtents(map.start, map.end))
      stored += extent.size();
    Printer::Cell dirty;
    if (region.smaps.field("Private_Dirty") || region.smaps.field("Shared_Dirty"))
      dirty = kib(region, "Private_Dirty") + kib(region, "Shared_Dirty");
    std::string path = map.path + (map.deleted ? " (deleted)" : "");
    table.addRow({map.start, map.end, map.perms.str(), map.offset,
                  llvm::formatv("{0:x-2}:{1:x-2}", map.dev_major, map.dev_minor).str(), map.inode,
                  map.size() / 1024, map.size() / page_size, smapsCell(region, "Rss"),
                  smapsCell(region, "Pss"), dirty, smapsCell(region, "Swap"), stored,
                  std::string(toString(region.kind)), path});
    by_kind[region.kind].add(region, stored);
    all.add(region, stored);
  }
  printer.printTable("regions", table);

  Printer::Table totals({{"KIND", "kind"},
                         {"REGIONS", "regions", Type::Unsigned, Align::Right},
                         {"SIZE-KIB", "size_kib", Type::Unsigned, Align::Right},
                         {"PAGES", "pages", Type::Unsigned, Align::Right},
                         {"RSS", "rss_kib", Type::Unsigned, Align::Right},
                         {"PSS", "pss_kib", Type::Unsigned, Align::Right},
                         {"DIRTY", "dirty_kib", Type::Unsigned, Align::Right},
                         {"SWAP", "swap_kib", Type::Unsigned, Align::Right},
                         {"STORED", "stored_bytes", Type::Unsigned, Align::Right}});
  auto row = [&](const std::string& name, const Totals& t) {
    totals.addRow({name, t.regions, t.bytes / 1024, t.bytes / page_size, t.rss_kib, t.pss_kib,
                   t.dirty_kib, t.swap_kib, t.stored});
  };
  for (const auto& [kind, t] : by_kind)
    row(std::string(toString(kind)), t);
  row("total", all);
  printer.printLine("");
  printer.printTable("totals", totals);
  return llvm::Error::success();
}

} // namespace

int runMaps(const CommonOptions& common) {
  MapsOptions options;
  for (const std::string& name : maps_kinds) {
    auto kind = regionKindFromString(name);
    if (!kind)
      return reportError("unknown region kind '" + name +
                         "' (text, rodata, data, bss, heap, stack, thread-stack, vdso, vvar, "
                         "vsyscall, anon, shared-anon, file, guard)");
    options.kinds.insert(*kind);
  }
  options.path_substring = maps_path;
  if (!maps_address.empty()) {
    auto address = parseAddress(maps_address);
    if (!address)
      return reportError(address.takeError());
    options.address = *address;
  }
  std::vector<std::string> paths(maps_sources.begin(), maps_sources.end());
  return runForEachSource(paths, common, /*build_address_space=*/false,
                          [&](OpenedSource& source, Printer& printer) {
                            return printMaps(*source.snapshot, options, printer);
                          });
}

} // namespace procsnap::analyze
