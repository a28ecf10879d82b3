// maps: the regions of a snapshot like pmap -X: a header line (pid, command line), one row
// per region (address, permissions, offset, size, the smaps figures captured, bytes stored,
// kind, mapping), then totals by kind. Text sizes are in one unit (KiB, --human, --bytes).
#include "analyze/cli/address_expression.h"
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/source_runner.h"
#include "analyze/output/size_format.h"

#include <llvm/ADT/StringExtras.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/FormatVariadic.h>

#include <algorithm>
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

cl::opt<bool> maps_human("human", cl::desc("Sizes in K, M, G (like ls -h; default KiB, like pmap)"),
                         cl::sub(subcommand("maps")), cl::cat(commandCategory()));
cl::alias maps_human_short("h", cl::desc("Alias for --human"), cl::aliasopt(maps_human),
                           cl::cat(commandCategory()));
cl::opt<bool> maps_bytes("bytes", cl::desc("Sizes in bytes, exactly"), cl::sub(subcommand("maps")),
                         cl::cat(commandCategory()));
cl::opt<bool> maps_wide("wide",
                        cl::desc("Full mapping paths and the device and inode columns (lines "
                                 "may then exceed 132 columns)"),
                        cl::sub(subcommand("maps")), cl::cat(commandCategory()));

struct MapsOptions {
  std::set<RegionKind> kinds; // empty: all
  std::string path_substring;
  std::optional<uint64_t> address;
  SizeUnit unit = SizeUnit::KiB;
  bool wide = false;
};

using Type = Printer::Column::Type;
using Align = Printer::Column::Align;

// One figure of a row: its text column, its JSON key (in KiB), and the smaps field(s) it
// sums. Shown in text only when the snapshot has the field (a core has no smaps at all).
struct SmapsFigure {
  const char* title;
  const char* json_key;
  std::vector<std::string> fields; // summed
  bool optional_column;            // dropped from text when no region has it
};

const std::vector<SmapsFigure>& smapsFigures() {
  static const std::vector<SmapsFigure> figures = {
      {"RSS", "rss_kib", {"Rss"}, false},
      {"PSS", "pss_kib", {"Pss"}, false},
      {"DIRTY", "dirty_kib", {"Private_Dirty", "Shared_Dirty"}, false},
      {"REF", "referenced_kib", {"Referenced"}, true},
      {"ANON", "anonymous_kib", {"Anonymous"}, true},
      {"LAZY", "lazyfree_kib", {"LazyFree"}, true},
      {"SWAP", "swap_kib", {"Swap"}, false},
      {"LOCK", "locked_kib", {"Locked"}, true},
  };
  return figures;
}

// The figure in KiB, or nothing when smaps did not give any of its fields for the region.
std::optional<uint64_t> figureKib(const RegionRecord& region, const SmapsFigure& figure) {
  std::optional<uint64_t> sum;
  for (const std::string& field : figure.fields)
    if (auto value = region.smaps.field(field))
      sum = sum.value_or(0) + *value;
  return sum;
}

// A sum that becomes unknown as soon as one part is unknown: a total of the known parts
// would pass for the whole (a core's RSS is unknown, not 0).
struct KnownSum {
  std::optional<uint64_t> value = 0;
  void add(std::optional<uint64_t> part) {
    value = value && part ? std::optional<uint64_t>(*value + *part) : std::nullopt;
  }
};

struct Totals {
  uint64_t regions = 0, bytes = 0, stored = 0;
  std::vector<KnownSum> figures = std::vector<KnownSum>(smapsFigures().size());
  void add(const RegionRecord& region, uint64_t stored_bytes) {
    ++regions;
    bytes += region.map().size();
    stored += stored_bytes;
    for (size_t f = 0; f < smapsFigures().size(); ++f)
      figures[f].add(figureKib(region, smapsFigures()[f]));
  }
};

// "/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)" reads "libc.so.6 (deleted)" unless --wide;
// pseudo names ([heap], [anon:x]) stay whole.
std::string mappingName(const MapsEntry& map, bool wide) {
  std::string path = map.path;
  if (!wide && !map.isPseudo()) {
    size_t slash = path.rfind('/');
    if (slash != std::string::npos)
      path = path.substr(slash + 1);
  }
  return path + (map.deleted ? " (deleted)" : "");
}

// Whether the region passes the filters. A module's view (--path) includes the anonymous
// .bss mapping after its data: the rest of its .bss lies there.
bool selected(const std::vector<RegionRecord>& regions, size_t index, const MapsOptions& options) {
  const RegionRecord& region = regions[index];
  const MapsEntry& map = region.map();
  if (!options.kinds.empty() && !options.kinds.count(region.kind))
    return false;
  if (!options.path_substring.empty()) {
    const std::string& path =
        region.kind == RegionKind::Bss && index > 0 ? regions[index - 1].map().path : map.path;
    if (path.find(options.path_substring) == std::string::npos)
      return false;
  }
  return !options.address || (*options.address >= map.start && *options.address < map.end);
}

llvm::Error printMaps(const Snapshot& snapshot, const MapsOptions& options, Printer& printer) {
  const SnapshotMetadata& metadata = snapshot.metadata();
  const uint64_t page_size = metadata.host.page_size ? metadata.host.page_size : 4096;
  const bool json = printer.isJson();
  const ProcessInfo& process = metadata.process;
  const std::string command_line =
      process.cmdline.empty() ? process.comm : llvm::join(process.cmdline, " ");
  if (json) {
    DictScope header(printer, "process");
    printer.printSigned("pid", process.pid);
    printer.printString("comm", process.comm);
    printer.printStringList("cmdline", process.cmdline);
  } else {
    // pmap's header line, and the unit of every size column.
    printer.printLine(std::to_string(process.pid) + ":   " + command_line + "   (sizes in " +
                      std::string(unitName(options.unit)) + ")");
  }

  // Text shows the optional smaps columns the snapshot captured; JSON always has every key.
  std::vector<bool> shown(smapsFigures().size(), true);
  bool thp_captured = false;
  for (size_t f = 0; f < smapsFigures().size(); ++f) {
    if (!smapsFigures()[f].optional_column || json)
      continue;
    shown[f] = std::any_of(metadata.regions.begin(), metadata.regions.end(),
                           [&](const RegionRecord& region) {
                             return figureKib(region, smapsFigures()[f]).has_value();
                           });
  }
  for (const RegionRecord& region : metadata.regions)
    thp_captured = thp_captured || region.smaps.field("THPeligible").has_value();

  // A size cell: KiB (JSON, and text by default) or the text unit asked for.
  auto sizeCell = [&](std::optional<uint64_t> bytes) -> Printer::Cell {
    if (!bytes)
      return {};
    if (json)
      return *bytes / 1024;
    return formatSize(*bytes, options.unit);
  };
  auto kibCell = [&](std::optional<uint64_t> kib) {
    return sizeCell(kib ? std::optional<uint64_t>(*kib * 1024) : std::nullopt);
  };
  const Type size_type = json ? Type::Unsigned : Type::String;

  std::vector<Printer::Column> columns;
  columns.push_back({json ? "START" : "ADDRESS", "start", Type::Hex});
  if (json)
    columns.push_back({"END", "end", Type::Hex});
  columns.push_back({"PERM", "perms"});
  columns.push_back({"OFFSET", "offset", Type::Hex, Align::Right});
  if (json || options.wide) {
    columns.push_back({"DEVICE", "device"});
    columns.push_back({"INODE", "inode", Type::Unsigned, Align::Right});
  }
  columns.push_back({"SIZE", "size_kib", size_type, Align::Right});
  if (json)
    columns.push_back({"PAGES", "pages", Type::Unsigned, Align::Right});
  for (size_t f = 0; f < smapsFigures().size(); ++f)
    if (shown[f])
      columns.push_back(
          {smapsFigures()[f].title, smapsFigures()[f].json_key, size_type, Align::Right});
  if (json || thp_captured)
    columns.push_back({"THP", "thp_eligible", Type::Bool, Align::Right});
  columns.push_back({"STORED", json ? "stored_bytes" : "stored", size_type, Align::Right});
  columns.push_back({"KIND", "kind"});
  columns.push_back({"MAPPING", "path"});
  Printer::Table table(columns);

  std::map<RegionKind, Totals> by_kind;
  Totals all;
  for (size_t index = 0; index < metadata.regions.size(); ++index) {
    const RegionRecord& region = metadata.regions[index];
    const MapsEntry& map = region.map();
    if (!selected(metadata.regions, index, options))
      continue;
    uint64_t stored = 0;
    for (const StoredExtent& extent : snapshot.storedExtents(map.start, map.end))
      stored += extent.size();
    std::vector<Printer::Cell> row;
    row.push_back(map.start);
    if (json)
      row.push_back(map.end);
    row.push_back(map.perms.str());
    row.push_back(map.offset);
    if (json || options.wide) {
      row.push_back(llvm::formatv("{0:x-2}:{1:x-2}", map.dev_major, map.dev_minor).str());
      row.push_back(map.inode);
    }
    row.push_back(sizeCell(map.size()));
    if (json)
      row.push_back(map.size() / page_size);
    for (size_t f = 0; f < smapsFigures().size(); ++f)
      if (shown[f])
        row.push_back(kibCell(figureKib(region, smapsFigures()[f])));
    if (json || thp_captured) {
      // JSON: a boolean (THPeligible is 0 or 1), null when not captured.
      auto thp = region.smaps.field("THPeligible");
      row.push_back(thp ? Printer::Cell{*thp != 0} : Printer::Cell{});
    }
    row.push_back(json ? Printer::Cell{stored} : sizeCell(stored));
    row.push_back(std::string(toString(region.kind)));
    row.push_back(json ? map.path + (map.deleted ? " (deleted)" : "")
                       : mappingName(map, options.wide));
    table.addRow(std::move(row));
    by_kind[region.kind].add(region, stored);
    all.add(region, stored);
  }
  printer.printTable("regions", table);

  std::vector<Printer::Column> total_columns;
  total_columns.push_back({"KIND", "kind"});
  total_columns.push_back({"REGIONS", "regions", Type::Unsigned, Align::Right});
  total_columns.push_back({"SIZE", "size_kib", size_type, Align::Right});
  if (json)
    total_columns.push_back({"PAGES", "pages", Type::Unsigned, Align::Right});
  for (size_t f = 0; f < smapsFigures().size(); ++f)
    if (shown[f])
      total_columns.push_back(
          {smapsFigures()[f].title, smapsFigures()[f].json_key, size_type, Align::Right});
  total_columns.push_back({"STORED", json ? "stored_bytes" : "stored", size_type, Align::Right});
  Printer::Table totals(total_columns);
  auto addTotal = [&](const std::string& name, const Totals& t) {
    std::vector<Printer::Cell> row{name, t.regions, sizeCell(t.bytes)};
    if (json)
      row.push_back(t.bytes / page_size);
    for (size_t f = 0; f < smapsFigures().size(); ++f)
      if (shown[f])
        row.push_back(kibCell(t.figures[f].value));
    row.push_back(json ? Printer::Cell{t.stored} : sizeCell(t.stored));
    totals.addRow(std::move(row));
  };
  for (const auto& [kind, t] : by_kind)
    addTotal(std::string(toString(kind)), t);
  addTotal("total", all);
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
  if (maps_human && maps_bytes)
    return reportError("--human and --bytes exclude each other");
  options.unit = maps_human ? SizeUnit::Human : maps_bytes ? SizeUnit::Bytes : SizeUnit::KiB;
  options.wide = maps_wide;
  std::vector<std::string> paths(maps_sources.begin(), maps_sources.end());
  return runForEachSource(paths, common, /*build_address_space=*/false,
                          [&](OpenedSource& source, Printer& printer) {
                            return printMaps(*source.snapshot, options, printer);
                          });
}

} // namespace procsnap::analyze
