#include "analyze/cli/source_runner.h"

#include "analyze/cli/exit_codes.h"
#include "common/util/terminal_text.h"

#include <llvm/Support/raw_ostream.h>

namespace procsnap::analyze {

llvm::Expected<OpenedSource> openSource(llvm::StringRef path, const CommonOptions& options,
                                        Printer& printer, bool build_address_space) {
  OpenedSource source;
  auto snapshot = openSnapshot(path, options.openOptions());
  if (!snapshot)
    return snapshot.takeError();
  source.snapshot = std::move(*snapshot);
  for (const std::string& warning : source.snapshot->metadata().warnings)
    printer.warn("capture: " + warning);
  if (source.snapshot->metadata().partial)
    printer.warn("the snapshot is partial: " + source.snapshot->metadata().partial_reason);
  source.locator = std::make_unique<ModuleLocator>(
      *source.snapshot, options.locatorOptions(),
      [&printer](llvm::StringRef message) { printer.warn(message); });
  if (build_address_space) {
    auto space = AddressSpace::build(*source.snapshot, *source.locator);
    if (!space)
      return space.takeError();
    source.space.emplace(std::move(*space));
  }
  return source;
}

int runForEachSource(llvm::ArrayRef<std::string> paths, const CommonOptions& options,
                     bool build_address_space, const PrintSource& print, const bool* findings) {
  std::unique_ptr<Printer> printer = Printer::create(llvm::outs(), options.format());
  bool failed = false;
  {
    ListScope sources(*printer, "sources");
    bool first = true;
    for (const std::string& path : paths) {
      if (!first)
        printer->printLine("");
      first = false;
      DictScope entry(*printer);
      printer->printString("path", path);
      auto source = openSource(path, options, *printer, build_address_space);
      llvm::Error error = llvm::Error::success();
      if (source) {
        printer->printString("source_kind", source->snapshot->sourceKind());
        error = print(*source, *printer);
      } else {
        error = source.takeError();
      }
      if (error) {
        std::string message = llvm::toString(std::move(error));
        printer->printString("error", message);
        llvm::errs() << "procsnap-analyze: error: " << escapeForTerminal(message) << "\n";
        failed = true;
      }
    }
  }
  printer->finish();
  if (failed)
    return kExitError;
  return findings && *findings ? kExitFindings : kExitOk;
}

} // namespace procsnap::analyze
