// info: what a snapshot is of (process, host), how it was taken (capture statistics), its
// threads and modules, and what else it holds (environment, embedded binaries).
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/source_runner.h"
#include "analyze/model/address_space.h"
#include "analyze/sources/archive_snapshot.h"

#include <llvm/Support/CommandLine.h>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::list<std::string> info_sources(cl::Positional, cl::OneOrMore, cl::desc("<source>..."),
                                   cl::sub(subcommand("info")), cl::cat(commandCategory()));

void printIdList(Printer& printer, llvm::StringRef key, const std::array<uint32_t, 4>& ids) {
  ListScope list(printer, key);
  for (uint32_t id : ids)
    printer.printUnsigned("", id);
}

// The --redact manifest of an archive source, or null (other sources, or nothing redacted).
const RedactionManifest* redactionsOf(const Snapshot& snapshot) {
  const auto* archive = dynamic_cast<const ArchiveSnapshot*>(&snapshot);
  return archive ? archive->reader().redactions() : nullptr;
}

// What --redact removed: counts only; the manifest never holds the patterns.
void printRedactions(Printer& printer, const RedactionManifest* manifest) {
  if (!manifest) {
    printer.printNull("redactions");
    return;
  }
  DictScope redactions(printer, "redactions");
  printer.printUnsigned("patterns", manifest->pattern_count);
  printer.printUnsigned("matches", manifest->entries.size() + manifest->omitted_entries);
  printer.printUnsigned("matches_listed", manifest->entries.size());
  printer.printUnsigned("bytes", manifest->bytes_redacted);
  printer.printUnsigned("metadata_fields", manifest->metadata_fields);
  printer.printHex("fill", std::to_integer<uint64_t>(manifest->fill));
  printer.printString("hash", "hmac-sha256");
}

// "clock_nanosleep@@GLIBC_2.17" reads "clock_nanosleep" in text, like gdb's backtraces; JSON
// keeps the symbol as the ELF file spells it.
std::string withoutVersion(const std::string& symbol) {
  size_t at = symbol.find('@');
  return at == std::string::npos || at == 0 ? symbol : symbol.substr(0, at);
}

// "symbol+0x12 in module" or "" for an address, via the address space.
std::string describe(const AddressSpace& space, uint64_t address, bool keep_version) {
  AddressInfo info = space.lookup(address);
  std::string text;
  if (!info.symbol.empty()) {
    text = keep_version ? info.symbol : withoutVersion(info.symbol);
    if (info.symbol_offset)
      text += "+" + hexString(info.symbol_offset);
  }
  if (!info.module_name.empty())
    text += (text.empty() ? "" : " ") + std::string("in ") + info.module_name;
  else if (info.region)
    text +=
        (text.empty() ? "" : " ") + std::string("in ") + std::string(toString(info.region->kind));
  return text;
}

llvm::Error printInfo(OpenedSource& source, Printer& printer) {
  const Snapshot& snapshot = *source.snapshot;
  const SnapshotMetadata& metadata = snapshot.metadata();
  const AddressSpace& space = *source.space;
  {
    DictScope process(printer, "process");
    const ProcessInfo& p = metadata.process;
    printer.printSigned("pid", p.pid);
    printer.printSigned("ppid", p.ppid);
    printer.printString("comm", p.comm);
    printer.printString("exe", p.exe);
    printer.printStringList("cmdline", p.cmdline);
    printer.printString("cwd", p.cwd);
    printIdList(printer, "uid", p.uid);
    printIdList(printer, "gid", p.gid);
    printer.printHex("coredump_filter", p.coredump_filter);
  }
  {
    DictScope host(printer, "host");
    printer.printString("hostname", metadata.host.hostname);
    printer.printString("kernel_release", metadata.host.kernel_release);
    printer.printString("machine", metadata.host.machine);
    printer.printUnsigned("page_size", metadata.host.page_size);
    printer.printString("boot_id", metadata.host.boot_id);
  }
  {
    DictScope capture(printer, "capture");
    printer.printString("time", metadata.capture_time);
    printer.printString("tool_version", metadata.tool_version);
    printer.printBool("partial", metadata.partial);
    if (metadata.partial)
      printer.printString("partial_reason", metadata.partial_reason);
    else
      printer.printNull("partial_reason");
    printer.printStringList("warnings", metadata.warnings);
  }
  {
    const CaptureStats& stats = metadata.stats;
    DictScope statistics(printer, "statistics");
    printer.printDouble("pause_seconds", stats.pause_seconds);
    {
      DictScope phases(printer, "phase_seconds");
      for (const auto& [phase, seconds] : stats.phase_seconds)
        printer.printDouble(phase, seconds);
    }
    printer.printUnsigned("bytes_copied", stats.bytes_copied);
    if (stats.bytes_recopied != 0)
      printer.printUnsigned("bytes_recopied", stats.bytes_recopied);
    printer.printUnsigned("bytes_stored", stats.bytes_stored);
    printer.printUnsigned("bytes_compressed", stats.bytes_compressed);
    if (stats.bytes_compressed > 0)
      printer.printDouble("compression_ratio",
                          static_cast<double>(stats.bytes_stored) / stats.bytes_compressed);
    else
      printer.printNull("compression_ratio");
    {
      DictScope skipped(printer, "bytes_skipped");
      for (const auto& [reason, bytes] : stats.bytes_skipped)
        printer.printUnsigned(reason, bytes);
    }
    printer.printUnsigned("threads", stats.threads);
    printer.printUnsigned("chunks", stats.chunks);
    printer.printBool("compressed_while_frozen", stats.compressed_while_frozen);
  }
  {
    DictScope contents(printer, "contents");
    printer.printUnsigned("regions", metadata.regions.size());
    printer.printUnsigned("threads", metadata.threads.size());
    printer.printUnsigned("modules", metadata.modules.size());
    size_t embedded = 0;
    for (const ModuleRecord& module : metadata.modules)
      embedded += module.embedded ? 1 : 0;
    printer.printUnsigned("embedded_binaries", embedded);
    printer.printBool("environment", metadata.process.has_environ);
    if (metadata.process.has_environ)
      printer.printUnsigned("environment_variables", metadata.process.environ.size());
    printRedactions(printer, redactionsOf(snapshot));
  }

  Printer::Table threads(
      {{"TID", "tid", Printer::Column::Type::Signed, Printer::Column::Align::Right},
       {"NAME", "name"},
       {"STATE", "state"},
       {"PC", "pc", Printer::Column::Type::Hex, Printer::Column::Align::Right},
       {"PC-SYMBOL", "pc_symbol"},
       {"SP", "sp", Printer::Column::Type::Hex, Printer::Column::Align::Right},
       {"SP-REGION", "sp_region"}});
  for (const ThreadRecord& thread : metadata.threads) {
    std::string sp_region;
    if (AddressInfo info = space.lookup(thread.sp); info.region)
      sp_region = std::string(toString(info.region->kind));
    threads.addRow({int64_t{thread.tid}, thread.name, thread.state, thread.pc,
                    describe(space, thread.pc, printer.isJson()), thread.sp, sp_region});
  }
  printer.printTable("threads", threads);

  Printer::Table modules(
      {{"PATH", "path"},
       {"BUILD-ID", "build_id"},
       {"LOAD-BIAS", "load_bias", Printer::Column::Type::Hex, Printer::Column::Align::Right},
       {"EMBEDDED", "embedded"},
       {"FOUND", "found"},
       {"DEBUG-INFO", "debug_file"}});
  for (const LoadedModule& module : space.modules()) {
    const ModuleRecord& record = metadata.modules[module.module_index];
    Printer::Cell bias;
    if (module.load_bias)
      bias = static_cast<uint64_t>(*module.load_bias);
    modules.addRow({record.path, record.build_id.empty() ? Printer::Cell{} : record.build_id, bias,
                    record.embedded,
                    module.located ? Printer::Cell{module.located->where} : Printer::Cell{},
                    module.located && !module.located->debug_path.empty()
                        ? Printer::Cell{module.located->debug_path}
                        : Printer::Cell{}});
  }
  printer.printTable("modules", modules);
  return llvm::Error::success();
}

} // namespace

int runInfo(const CommonOptions& options) {
  std::vector<std::string> paths(info_sources.begin(), info_sources.end());
  return runForEachSource(paths, options, /*build_address_space=*/true, printInfo);
}

} // namespace procsnap::analyze
