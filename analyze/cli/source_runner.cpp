#include "analyze/cli/source_runner.h"

#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "analyze/cli/standard_input.h"

#include <llvm/Support/raw_ostream.h>

namespace procsnap::analyze {

llvm::Expected<OpenedSource> openSource(llvm::StringRef path, const CommonOptions& options,
                                        Printer& printer, bool build_address_space) {
  OpenedSource source;
  std::string readable = path.str();
  if (path == kStandardInputName) {
    auto spooled = standardInputPath();
    if (!spooled)
      return spooled.takeError();
    readable = *spooled;
  }
  auto snapshot = openSnapshot(readable, options.openOptions());
  if (!snapshot) {
    if (readable == path)
      return snapshot.takeError();
    // Name the source as the user did, not the spool file.
    std::string message = llvm::toString(snapshot.takeError());
    for (size_t at; (at = message.find(readable)) != std::string::npos;)
      message.replace(at, readable.size(), path.str());
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", message.c_str());
  }
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
  const bool json = printer->isJson();
  bool failed = false;
  {
    // JSON always lists the sources (one schema for scripts); text wraps nothing for one
    // source and titles each block for several, like head(1) does with several files.
    std::optional<ListScope> sources;
    if (json)
      sources.emplace(*printer, "sources");
    bool first = true;
    for (const std::string& path : paths) {
      std::optional<DictScope> entry;
      if (json) {
        entry.emplace(*printer);
        printer->printString("path", path);
      } else if (paths.size() > 1) {
        if (!first)
          printer->printLine("");
        printer->printLine("==> " + path + " <==");
      }
      first = false;
      auto source = openSource(path, options, *printer, build_address_space);
      llvm::Error error = llvm::Error::success();
      if (source) {
        if (json)
          printer->printString("source_kind", source->snapshot->sourceKind());
        error = print(*source, *printer);
      } else {
        error = source.takeError();
      }
      if (error) {
        std::string message = llvm::toString(std::move(error));
        if (json)
          printer->printString("error", message);
        reportError(message);
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
