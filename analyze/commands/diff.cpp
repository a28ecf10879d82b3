// diff: what changed between snapshots of a process, like diff(1) for memory: BASE NEW, or a
// series A B C ... compared step by step with the trend per region kind (leak hunting over
// periodic snapshots). Exit 0 when nothing differs, 1 when something does, 2 on error. The
// engine is analyze/engines/snapshot_diff.h; this file parses options and prints.
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "analyze/cli/source_runner.h"
#include "analyze/engines/snapshot_diff.h"
#include "analyze/engines/string_scanner.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/FormatVariadic.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <string>
#include <vector>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::list<std::string> sources_option(cl::Positional, cl::OneOrMore,
                                     cl::desc("<base> <new> [<newer>...]"),
                                     cl::sub(subcommand("diff")), cl::cat(commandCategory()));
cl::opt<bool> strings_option("strings",
                             cl::desc("Also list the strings in NEW's changed or added bytes that "
                                      "BASE's changed or removed bytes do not hold"),
                             cl::sub(subcommand("diff")), cl::cat(commandCategory()));
cl::opt<unsigned> min_length_option("n",
                                    cl::desc("With --strings: strings of at least N characters "
                                             "(default 4, like GNU strings)"),
                                    cl::value_desc("N"), cl::init(4), cl::Prefix,
                                    cl::sub(subcommand("diff")), cl::cat(commandCategory()));

// Changed page ranges listed per region; the rest are counted in the region's row.
constexpr size_t kMaxChangedRangesShown = 16;

struct DiffCommandOptions {
  std::vector<std::string> sources;
  DiffOptions diff;
};

llvm::Expected<DiffCommandOptions> diffOptionsFromCommandLine() {
  DiffCommandOptions options;
  options.sources.assign(sources_option.begin(), sources_option.end());
  if (options.sources.size() < 2)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "diff needs at least two sources (BASE NEW), got %zu",
                                   options.sources.size());
  if (min_length_option < 1 || min_length_option > kMaxMinStringLength)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "-n must be between 1 and %zu, got %u", kMaxMinStringLength,
                                   min_length_option.getValue());
  options.diff.strings = strings_option;
  options.diff.min_string_length = min_length_option;
  return options;
}

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c == '"' || c == '\\')
      out += std::string("\\") + c;
    else
      out += c;
  }
  return out + "\"";
}

const ModuleRecord* executableModule(const SnapshotMetadata& metadata) {
  for (const ModuleRecord& module : metadata.modules)
    if (module.path == metadata.process.exe)
      return &module;
  return nullptr;
}

void printSourceSummary(Printer& printer, llvm::StringRef key, const std::string& path,
                        const Snapshot& snapshot) {
  const SnapshotMetadata& metadata = snapshot.metadata();
  const ModuleRecord* exe = executableModule(metadata);
  if (printer.isJson()) {
    DictScope scope(printer, key);
    printer.printString("path", path);
    printer.printString("source_kind", snapshot.sourceKind());
    printer.printSigned("pid", metadata.process.pid);
    printer.printString("exe", metadata.process.exe);
    if (exe && !exe->build_id.empty())
      printer.printString("build_id", exe->build_id);
    else
      printer.printNull("build_id");
    printer.printString("capture_time", metadata.capture_time);
    return;
  }
  printer.printLine(llvm::formatv("{0} {1}\t(pid {2}, {3})", key == "base" ? "---" : "+++", path,
                                  metadata.process.pid, metadata.capture_time)
                        .str());
}

void printRegions(Printer& printer, const SnapshotDiff& diff) {
  using Column = Printer::Column;
  Printer::Table table({
      {"Change", "change", Column::Type::String},
      {"Base start", "base_start", Column::Type::Hex},
      {"Base end", "base_end", Column::Type::Hex},
      {"New start", "new_start", Column::Type::Hex},
      {"New end", "new_end", Column::Type::Hex},
      {"Perms", "perms", Column::Type::String},
      {"Kind", "kind", Column::Type::String},
      {"Size delta", "size_delta", Column::Type::Signed, Column::Align::Right},
      {"Pages changed", "pages_changed", Column::Type::Unsigned, Column::Align::Right},
      {"Bytes changed", "bytes_changed", Column::Type::Unsigned, Column::Align::Right},
      {"Path", "path", Column::Type::String},
  });
  for (const RegionDiff& region : diff.regions) {
    if (!region.changed())
      continue;
    std::string change;
    for (const std::string& word : region.changes())
      change += (change.empty() ? "" : ",") + word;
    auto hex = [](const std::optional<MapsEntry>& map, bool start) -> Printer::Cell {
      if (!map)
        return std::monostate{};
      return start ? map->start : map->end;
    };
    std::string perms = region.base ? region.base->perms.str() : region.next->perms.str();
    if (region.permissionsChanged())
      perms += "->" + region.next->perms.str();
    std::string kind(toString(region.base ? region.base_kind : region.next_kind));
    if (region.kindChanged())
      kind += "->" + std::string(toString(region.next_kind));
    const MapsEntry& map = region.next ? *region.next : *region.base;
    std::string path = map.path + (map.deleted ? " (deleted)" : "");
    Printer::Cell pages = std::monostate{}, bytes = std::monostate{};
    if (region.pair.matched()) {
      pages = region.content.pages_changed;
      bytes = region.content.bytes_changed;
    }
    table.addRow({change, hex(region.base, true), hex(region.base, false), hex(region.next, true),
                  hex(region.next, false), perms, kind, region.sizeDelta(), pages, bytes,
                  path.empty() ? Printer::Cell(std::monostate{}) : Printer::Cell(path)});
  }
  if (table.empty() && !printer.isJson()) {
    printer.printLine("regions: no change");
    return;
  }
  printer.printTable("regions", table);
}

void printChangedRanges(Printer& printer, const SnapshotDiff& diff) {
  using Column = Printer::Column;
  Printer::Table table({
      {"Start", "start", Column::Type::Hex},
      {"End", "end", Column::Type::Hex},
      {"New start", "new_start", Column::Type::Hex},
      {"Pages", "pages", Column::Type::Unsigned, Column::Align::Right},
      {"Kind", "kind", Column::Type::String},
  });
  uint64_t omitted = 0;
  for (const RegionDiff& region : diff.regions) {
    const auto& ranges = region.content.changed_ranges;
    uint64_t page = diff.page_size;
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (i == kMaxChangedRangesShown) {
        omitted += ranges.size() - i;
        break;
      }
      table.addRow({ranges[i].start, ranges[i].end,
                    ranges[i].start + static_cast<uint64_t>(region.pair.delta),
                    ranges[i].size() / page, std::string(toString(region.next_kind))});
    }
  }
  if (table.empty() && !printer.isJson())
    return;
  printer.printTable("changed_pages", table);
  if (printer.isJson())
    printer.printUnsigned("changed_page_ranges_omitted", omitted);
  else if (omitted > 0)
    printer.printLine(llvm::formatv("({0} more changed ranges not listed)", omitted).str());
}

void printGlobals(Printer& printer, const SnapshotDiff& diff) {
  if (printer.isJson()) {
    ListScope list(printer, "globals");
    for (const GlobalDiff& global : diff.globals) {
      DictScope entry(printer);
      printer.printString("module", global.module_name);
      printer.printString("module_path", global.module_path);
      printer.printString("section", global.section);
      printer.printString("symbol", global.symbol);
      printer.printHex("base_address", global.base_address);
      printer.printHex("new_address", global.new_address);
      printer.printUnsigned("size", global.size);
      printer.printUnsigned("bytes_changed", global.bytes_changed);
      printer.printString("format", toString(global.format));
      if (global.format == ValueFormat::Integer) {
        printer.printUnsigned("old", global.old_integer);
        printer.printUnsigned("new", global.new_integer);
      } else {
        printer.printString("old", global.old_text);
        printer.printString("new", global.new_text);
      }
      if (global.format == ValueFormat::Hex)
        printer.printHex("shown_offset", global.shown_offset);
    }
    return;
  }
  if (diff.globals.empty()) {
    printer.printLine("globals: no change");
    return;
  }
  printer.printLine("globals:");
  for (const GlobalDiff& global : diff.globals) {
    std::string line = "  " + global.module_name + ":" + global.section + " " + global.symbol;
    if (global.base_address != global.new_address)
      line += llvm::formatv(" ({0} -> {1})", hexString(global.base_address),
                            hexString(global.new_address))
                  .str();
    else
      line += " (" + hexString(global.base_address) + ")";
    line += ": ";
    switch (global.format) {
    case ValueFormat::Integer:
      line += std::to_string(global.old_integer) + " -> " + std::to_string(global.new_integer);
      break;
    case ValueFormat::String:
      line += quoted(global.old_text) + " -> " + quoted(global.new_text);
      break;
    case ValueFormat::Hex:
      if (global.size > kMaxShownValueBytes)
        line += "+" + hexString(global.shown_offset) + " ";
      line += global.old_text + " -> " + global.new_text;
      line += llvm::formatv(" ({0} of {1} bytes changed)", global.bytes_changed, global.size);
      break;
    }
    printer.printLine(line);
  }
}

// An unknown RSS (a core has no smaps) prints "-"/null, and so does any delta it enters.
Printer::Cell knownCell(std::optional<uint64_t> value) {
  return value ? Printer::Cell{*value} : Printer::Cell{};
}

Printer::Cell rssDelta(std::optional<uint64_t> before, std::optional<uint64_t> after) {
  if (!before || !after)
    return {};
  return static_cast<int64_t>(*after) - static_cast<int64_t>(*before);
}

void printTotals(Printer& printer, const SnapshotDiff& diff) {
  using Column = Printer::Column;
  auto right = Column::Align::Right;
  Printer::Table table({
      {"Kind", "kind", Column::Type::String},
      {"Regions before", "regions_before", Column::Type::Unsigned, right},
      {"after", "regions_after", Column::Type::Unsigned, right},
      {"Mapped before", "mapped_before", Column::Type::Unsigned, right},
      {"after", "mapped_after", Column::Type::Unsigned, right},
      {"delta", "mapped_delta", Column::Type::Signed, right},
      {"RSS before", "rss_before", Column::Type::Unsigned, right},
      {"after", "rss_after", Column::Type::Unsigned, right},
      {"delta", "rss_delta", Column::Type::Signed, right},
      {"Stored before", "stored_before", Column::Type::Unsigned, right},
      {"after", "stored_after", Column::Type::Unsigned, right},
      {"delta", "stored_delta", Column::Type::Signed, right},
  });
  for (int k = 0; k < kRegionKindCount; ++k) {
    const KindTotal& a = diff.base_totals[static_cast<size_t>(k)];
    const KindTotal& b = diff.new_totals[static_cast<size_t>(k)];
    if (a.regions == 0 && b.regions == 0)
      continue;
    auto delta = [](uint64_t before, uint64_t after) {
      return static_cast<int64_t>(after) - static_cast<int64_t>(before);
    };
    table.addRow({std::string(toString(static_cast<RegionKind>(k))), a.regions, b.regions,
                  a.mapped_bytes, b.mapped_bytes, delta(a.mapped_bytes, b.mapped_bytes),
                  knownCell(a.rss_bytes), knownCell(b.rss_bytes),
                  rssDelta(a.rss_bytes, b.rss_bytes), a.stored_bytes, b.stored_bytes,
                  delta(a.stored_bytes, b.stored_bytes)});
  }
  printer.printTable("totals", table);
}

void printNewStrings(Printer& printer, const SnapshotDiff& diff) {
  if (printer.isJson()) {
    {
      ListScope list(printer, "new_strings");
      for (const NewString& found : diff.new_strings) {
        DictScope entry(printer);
        printer.printHex("address", found.address);
        printer.printString("kind", toString(found.kind));
        printer.printUnsigned("length", found.length);
        printer.printString("string", found.text);
        printer.printBool("truncated", found.truncated);
      }
    }
    printer.printUnsigned("new_strings_omitted", diff.new_strings_omitted);
    return;
  }
  printer.printLine(
      llvm::formatv("new strings: {0}", diff.new_strings.size() + diff.new_strings_omitted).str());
  for (const NewString& found : diff.new_strings) {
    std::string line = "  " + hexString(found.address) + "  " + std::string(toString(found.kind));
    line.append(line.size() < 34 ? 34 - line.size() : 1, ' ');
    line += found.text;
    if (found.truncated)
      line += llvm::formatv(" ...[{0} characters]", found.length).str();
    printer.printLine(line);
  }
  if (diff.new_strings_omitted > 0)
    printer.printLine(llvm::formatv("  ({0} more not listed)", diff.new_strings_omitted).str());
}

void printSummary(Printer& printer, const SnapshotDiff& diff) {
  ContentDiff sum = diff.contentTotals();
  uint64_t added = 0, removed = 0, modified = 0;
  for (const RegionDiff& region : diff.regions) {
    if (region.added())
      ++added;
    else if (region.removed())
      ++removed;
    else if (region.changed())
      ++modified;
  }
  if (printer.isJson()) {
    DictScope scope(printer, "summary");
    printer.printBool("differs", diff.differs());
    printer.printUnsigned("regions_added", added);
    printer.printUnsigned("regions_removed", removed);
    printer.printUnsigned("regions_changed", modified);
    printer.printUnsigned("pages_changed", sum.pages_changed);
    printer.printUnsigned("bytes_changed", sum.bytes_changed);
    printer.printUnsigned("bytes_compared", sum.bytes_compared);
    printer.printUnsigned("bytes_not_compared", sum.bytes_not_compared);
    printer.printUnsigned("chunks_equal_by_digest", sum.chunks_equal_by_digest);
    printer.printUnsigned("chunks_different_by_digest", sum.chunks_different_by_digest);
    printer.printUnsigned("bytes_read", sum.bytes_read);
    printer.printUnsigned("globals_changed", diff.globals.size());
    return;
  }
  printer.printLine(
      llvm::formatv("summary: {0}; {1} regions added, {2} removed, {3} changed; {4} pages "
                    "({5} bytes) changed of {6} compared; {7} chunks equal by digest, {8} "
                    "differing; {9} bytes read",
                    diff.differs() ? "differ" : "no difference", added, removed, modified,
                    sum.pages_changed, sum.bytes_changed, sum.bytes_compared,
                    sum.chunks_equal_by_digest, sum.chunks_different_by_digest, sum.bytes_read)
          .str());
  if (sum.bytes_not_compared > 0)
    printer.printLine(llvm::formatv("({0} bytes not comparable: excluded, unreadable or lost "
                                    "on one side)",
                                    sum.bytes_not_compared)
                          .str());
}

void printStep(Printer& printer, const std::string& base_path, const OpenedSource& base,
               const std::string& new_path, const OpenedSource& next, const SnapshotDiff& diff) {
  printSourceSummary(printer, "base", base_path, *base.snapshot);
  printSourceSummary(printer, "new", new_path, *next.snapshot);
  if (printer.isJson())
    printer.printStringList("warnings", diff.warnings);
  printRegions(printer, diff);
  printChangedRanges(printer, diff);
  printGlobals(printer, diff);
  printTotals(printer, diff);
  if (diff.strings_searched)
    printNewStrings(printer, diff);
  printSummary(printer, diff);
}

// A kind's values over the series: "growing" (never down, up overall), "shrinking", "flat"
// or "mixed"; "unknown" when a snapshot does not know its value (a core's RSS).
std::string trendOf(const std::vector<std::optional<uint64_t>>& values) {
  if (std::any_of(values.begin(), values.end(), [](auto value) { return !value; }))
    return "unknown";
  bool up = false, down = false;
  for (size_t i = 1; i < values.size(); ++i) {
    up |= *values[i] > *values[i - 1];
    down |= *values[i] < *values[i - 1];
  }
  if (up && down)
    return "mixed";
  return up ? "growing" : down ? "shrinking" : "flat";
}

void printTrend(Printer& printer, const std::vector<KindTotals>& series) {
  using Column = Printer::Column;
  std::vector<Column> columns = {{"Kind", "kind", Column::Type::String}};
  for (size_t i = 0; i < series.size(); ++i)
    columns.push_back({"RSS #" + std::to_string(i + 1), "rss_" + std::to_string(i),
                       Column::Type::Unsigned, Column::Align::Right});
  columns.push_back({"RSS delta", "rss_delta", Column::Type::Signed, Column::Align::Right});
  columns.push_back({"Mapped delta", "mapped_delta", Column::Type::Signed, Column::Align::Right});
  columns.push_back({"Trend", "trend", Column::Type::String});
  if (printer.isJson()) {
    ListScope list(printer, "trend");
    for (int k = 0; k < kRegionKindCount; ++k) {
      std::vector<std::optional<uint64_t>> rss;
      std::vector<uint64_t> mapped, regions;
      for (const KindTotals& totals : series) {
        rss.push_back(totals[static_cast<size_t>(k)].rss_bytes);
        mapped.push_back(totals[static_cast<size_t>(k)].mapped_bytes);
        regions.push_back(totals[static_cast<size_t>(k)].regions);
      }
      if (std::all_of(regions.begin(), regions.end(), [](uint64_t n) { return n == 0; }))
        continue;
      DictScope entry(printer);
      printer.printString("kind", toString(static_cast<RegionKind>(k)));
      auto printValues = [&](llvm::StringRef key, const std::vector<uint64_t>& values) {
        ListScope values_list(printer, key);
        for (uint64_t value : values)
          printer.printUnsigned("", value);
      };
      printValues("regions", regions);
      printValues("mapped_bytes", mapped);
      {
        ListScope values_list(printer, "rss_bytes");
        for (std::optional<uint64_t> value : rss)
          value ? printer.printUnsigned("", *value) : printer.printNull("");
      }
      if (rss.front() && rss.back())
        printer.printSigned("rss_delta",
                            static_cast<int64_t>(*rss.back()) - static_cast<int64_t>(*rss.front()));
      else
        printer.printNull("rss_delta");
      printer.printSigned("mapped_delta", static_cast<int64_t>(mapped.back()) -
                                              static_cast<int64_t>(mapped.front()));
      printer.printString("trend", trendOf(rss));
    }
    return;
  }
  Printer::Table table(columns);
  for (int k = 0; k < kRegionKindCount; ++k) {
    std::vector<std::optional<uint64_t>> rss;
    uint64_t regions = 0;
    for (const KindTotals& totals : series) {
      rss.push_back(totals[static_cast<size_t>(k)].rss_bytes);
      regions += totals[static_cast<size_t>(k)].regions;
    }
    if (regions == 0)
      continue;
    std::vector<Printer::Cell> row = {std::string(toString(static_cast<RegionKind>(k)))};
    for (std::optional<uint64_t> value : rss)
      row.push_back(knownCell(value));
    row.push_back(rssDelta(rss.front(), rss.back()));
    row.push_back(static_cast<int64_t>(series.back()[static_cast<size_t>(k)].mapped_bytes) -
                  static_cast<int64_t>(series.front()[static_cast<size_t>(k)].mapped_bytes));
    row.push_back(trendOf(rss));
    table.addRow(std::move(row));
  }
  printer.printTable("trend (RSS bytes per snapshot, by region kind)", table);
}

// The source's address space, built on first use (the diff asks only when it needs symbols).
AddressSpaceProvider addressSpaceOf(OpenedSource& source) {
  return [&source]() -> llvm::Expected<const AddressSpace*> {
    if (!source.space) {
      auto space = AddressSpace::build(*source.snapshot, *source.locator);
      if (!space)
        return space.takeError();
      source.space.emplace(std::move(*space));
    }
    return &*source.space;
  };
}

int runDiffCommand(const DiffCommandOptions& options, const CommonOptions& common) {
  std::unique_ptr<Printer> printer = Printer::create(llvm::outs(), common.format());
  auto fail = [&](llvm::Error error) {
    std::string message = llvm::toString(std::move(error));
    if (printer->isJson())
      printer->printString("error", message);
    printer->finish();
    return reportError(message);
  };
  auto base = openSource(options.sources[0], common, *printer, /*build_address_space=*/false);
  if (!base)
    return fail(base.takeError());
  std::vector<KindTotals> series = {totalsByKind(base->snapshot->metadata())};
  bool differs = false;
  llvm::Error error = llvm::Error::success();
  {
    ListScope steps(*printer, "steps");
    for (size_t i = 1; i < options.sources.size() && !error; ++i) {
      auto next = openSource(options.sources[i], common, *printer, /*build_address_space=*/false);
      if (!next) {
        error = next.takeError();
        break;
      }
      auto diff = diffSnapshots(*base->snapshot, addressSpaceOf(*base), *next->snapshot,
                                addressSpaceOf(*next), options.diff);
      if (!diff) {
        error = diff.takeError();
        break;
      }
      for (const std::string& warning : diff->warnings)
        printer->warn(warning);
      if (i > 1)
        printer->printLine("");
      {
        DictScope step(*printer);
        printStep(*printer, options.sources[i - 1], *base, options.sources[i], *next, *diff);
      }
      differs |= diff->differs();
      series.push_back(diff->new_totals);
      base = std::move(next); // only two snapshots are open at a time
    }
  }
  if (error)
    return fail(std::move(error));
  if (series.size() > 2) {
    printer->printLine("");
    printTrend(*printer, series);
  }
  if (printer->isJson())
    printer->printBool("differs", differs);
  printer->finish();
  return differs ? kExitFindings : kExitOk;
}

} // namespace

int runDiff(const CommonOptions& options) {
  llvm::Expected<DiffCommandOptions> diff_options = diffOptionsFromCommandLine();
  if (!diff_options)
    return reportError(diff_options.takeError());
  return runDiffCommand(*diff_options, options);
}

} // namespace procsnap::analyze
