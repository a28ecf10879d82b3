#include "analyze/analyze_options.h"

#include "analyze/command_table.h"

#include <llvm/Support/WithColor.h>
#include <llvm/Support/raw_ostream.h>

#include <deque>
#include <map>

namespace procsnap::analyze {

namespace cl = llvm::cl;

llvm::cl::OptionCategory& commonCategory() {
  static cl::OptionCategory category("Common options");
  return category;
}

llvm::cl::OptionCategory& commandCategory() {
  static cl::OptionCategory category("Command options");
  return category;
}

namespace {

// In every subcommand (SubCommand::getAll), listed under commonCategory().
cl::opt<bool> json_option("json", cl::desc("Print JSON (schema: docs/JSON.md) instead of text"),
                          cl::sub(cl::SubCommand::getAll()), cl::cat(commonCategory()));
cl::opt<std::string> sysroot_option("sysroot",
                                    cl::desc("Look for module files under DIR + their path"),
                                    cl::value_desc("DIR"), cl::sub(cl::SubCommand::getAll()),
                                    cl::cat(commonCategory()));
cl::list<std::string> debug_dir_option(
    "debug-dir",
    cl::desc("Look for DIR/.build-id/xx/rest.debug (repeatable; default /usr/lib/debug)"),
    cl::value_desc("DIR"), cl::sub(cl::SubCommand::getAll()), cl::cat(commonCategory()));
cl::opt<bool> salvage_option("salvage",
                             cl::desc("Open a truncated or damaged archive by scanning its blocks"),
                             cl::sub(cl::SubCommand::getAll()), cl::cat(commonCategory()));

} // namespace

OpenOptions CommonOptions::openOptions() const {
  OpenOptions options;
  options.salvage = salvage;
  options.sysroot = sysroot;
  options.debug_dirs = debug_dirs;
  if (options.debug_dirs.empty())
    options.debug_dirs.push_back(kDefaultDebugDir);
  return options;
}

LocatorOptions CommonOptions::locatorOptions() const {
  LocatorOptions options;
  options.sysroot = sysroot;
  options.debug_dirs = debug_dirs;
  return options;
}

CommonOptions commonOptionsFromCommandLine() {
  CommonOptions options;
  options.json = json_option;
  options.sysroot = sysroot_option;
  options.debug_dirs.assign(debug_dir_option.begin(), debug_dir_option.end());
  options.salvage = salvage_option;
  return options;
}

int reportError(llvm::Error error) {
  std::string message = llvm::toString(std::move(error));
  return reportError(llvm::StringRef(message));
}

int reportError(llvm::StringRef message) {
  llvm::outs().flush();
  llvm::errs() << "procsnap-analyze: error: " << message << "\n";
  return kExitError;
}

llvm::Expected<uint64_t> parseAddress(llvm::StringRef text) {
  llvm::StringRef trimmed = text.trim();
  uint64_t value = 0;
  bool failed;
  if (trimmed.starts_with_insensitive("0x"))
    failed = trimmed.drop_front(2).getAsInteger(16, value) || trimmed.size() == 2;
  else
    failed = trimmed.getAsInteger(10, value);
  if (failed)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "'%s' is not an address (use 0x... for hex)",
                                   text.str().c_str());
  return value;
}

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
        llvm::errs() << "procsnap-analyze: error: " << message << "\n";
        failed = true;
      }
    }
  }
  printer->finish();
  if (failed)
    return kExitError;
  return findings && *findings ? kExitFindings : kExitOk;
}

llvm::cl::SubCommand& subcommand(llvm::StringRef name) {
  // deque: SubCommands register their own address, so they must never move.
  static std::deque<cl::SubCommand> storage;
  static std::map<std::string, cl::SubCommand*, std::less<>> by_name;
  if (auto it = by_name.find(name); it != by_name.end())
    return *it->second;
  for (const CommandRow& row : kCommandTable) {
    if (name == row.name) {
      cl::SubCommand& created = storage.emplace_back(row.name, row.help);
      by_name.emplace(row.name, &created);
      return created;
    }
  }
  llvm::report_fatal_error(llvm::Twine("unknown subcommand '") + name + "'");
}

} // namespace procsnap::analyze
