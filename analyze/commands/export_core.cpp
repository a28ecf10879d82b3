// export-core: writes a snapshot as an ELF core file that gdb loads with the executable
// (core_writer.h, docs/CORES.md). Capture keeps one format, the archive; converting to cores
// is the analyzer's job, so it works from any source. The core is sparse, written under a
// temporary name and renamed, mode 0600, and never replaces a file without --force.
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "analyze/cli/source_runner.h"
#include "analyze/output/core_writer.h"
#include "analyze/sources/core_notes.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/Format.h>
#include <llvm/Support/raw_ostream.h>

#include <chrono>
#include <string>
#include <unistd.h>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::opt<std::string> source_option(cl::Positional, cl::Required, cl::desc("<source>"),
                                   cl::sub(subcommand("export-core")), cl::cat(commandCategory()));
cl::opt<std::string> output_option("o", cl::Required, cl::desc("Write the core to FILE"),
                                   cl::value_desc("FILE"), cl::sub(subcommand("export-core")),
                                   cl::cat(commandCategory()));
cl::opt<bool> force_option("force", cl::desc("Overwrite FILE when it exists"),
                           cl::sub(subcommand("export-core")), cl::cat(commandCategory()));

// Redraws of the progress line at most this often.
constexpr std::chrono::milliseconds kProgressInterval{100};

std::string formatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  if (unit == 0)
    os << bytes << " B";
  else
    os << llvm::format("%.1f %s", value, kUnits[unit]);
  return text;
}

// One updating line on standard error ("export-core  12.0 MiB / 40.0 MiB  30%"), only when
// standard error is a terminal.
class ProgressLine final {
public:
  ProgressLine() : enabled_(::isatty(STDERR_FILENO) != 0) {}
  ~ProgressLine() { clear(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(uint64_t done, uint64_t total) {
    if (!enabled_)
      return;
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && done < total && now - last_draw_ < kProgressInterval)
      return;
    last_draw_ = now;
    drawn_ = true;
    unsigned percent = total == 0 ? 100 : static_cast<unsigned>(done * 100 / total);
    llvm::errs() << "\r\x1b[Kexport-core  " << formatBytes(done) << " / " << formatBytes(total)
                 << "  " << percent << "%";
    llvm::errs().flush();
  }

  void clear() {
    if (!drawn_)
      return;
    llvm::errs() << "\r\x1b[K";
    llvm::errs().flush();
    drawn_ = false;
  }

private:
  const bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

void printNotes(Printer& printer, const std::vector<CoreNoteEntry>& notes) {
  Printer::Table table({
      {"OWNER", "owner", Printer::Column::Type::String},
      {"TYPE", "type", Printer::Column::Type::Hex},
      {"NAME", "name", Printer::Column::Type::String},
      {"SIZE", "size", Printer::Column::Type::Unsigned, Printer::Column::Align::Right},
      {"TID", "tid", Printer::Column::Type::Unsigned, Printer::Column::Align::Right},
  });
  for (const CoreNoteEntry& note : notes) {
    Printer::Cell tid;
    if (note.tid != 0)
      tid = static_cast<uint64_t>(note.tid);
    table.addRow({note.owner, uint64_t{note.type},
                  std::string(core::noteTypeName(note.owner, note.type)), note.descriptor_size,
                  tid});
  }
  printer.printTable("notes", table);
}

llvm::Error exportCore(const CommonOptions& options, Printer& printer) {
  if (output_option == "-")
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "export-core writes a sparse file and cannot write to standard "
                                   "output; use -o FILE");
  llvm::Expected<OpenedSource> source =
      openSource(source_option, options, printer, /*build_address_space=*/false);
  if (!source)
    return source.takeError();
  const Snapshot& snapshot = *source->snapshot;

  CoreWriteOptions write_options;
  write_options.path = output_option;
  write_options.force = force_option;
  write_options.salvage = options.salvage;
  ProgressLine progress;
  llvm::Expected<CoreWriteSummary> summary =
      writeCore(snapshot, write_options,
                [&progress](uint64_t done, uint64_t total) { progress.update(done, total); });
  progress.clear();
  if (!summary)
    return summary.takeError();
  for (const std::string& warning : summary->warnings)
    printer.warn(warning);

  DictScope report(printer, "export_core");
  printer.printString("source", source_option);
  printer.printString("source_kind", snapshot.sourceKind());
  printer.printString("file", output_option);
  printer.printUnsigned("threads", summary->threads);
  printer.printUnsigned("load_segments", summary->load_segments);
  printer.printUnsigned("segments_without_contents", summary->segments_without_contents);
  printer.printUnsigned("memory_size", summary->memory_size);
  printer.printUnsigned("contents_size", summary->contents_size);
  printer.printUnsigned("bytes_written", summary->bytes_written);
  printer.printUnsigned("bytes_unavailable", summary->bytes_unavailable);
  printer.printUnsigned("file_size", summary->file_size);
  printer.printUnsigned("allocated_size", summary->allocated_size);
  printNotes(printer, summary->notes);
  return llvm::Error::success();
}

} // namespace

int runExportCore(const CommonOptions& options) {
  std::unique_ptr<Printer> printer = Printer::create(llvm::outs(), options.format());
  llvm::Error error = exportCore(options, *printer);
  printer->finish();
  if (error)
    return reportError(std::move(error));
  return kExitOk;
}

} // namespace procsnap::analyze
