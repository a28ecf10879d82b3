#include "analyze/cli/common_options.h"

#include "analyze/cli/command_table.h"

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
