// Options every command shares (--json, --sysroot, --debug-dir, --salvage), registered once
// in every subcommand under one category, and the plain struct the commands take.
#pragma once

#include "analyze/model/module_locator.h"
#include "analyze/model/snapshot.h"
#include "analyze/output/printer.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/Error.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct CommonOptions {
  bool json = false;
  std::string sysroot;
  std::vector<std::string> debug_dirs; // empty: kDefaultDebugDir
  bool salvage = false;

  Printer::Format format() const { return json ? Printer::Format::Json : Printer::Format::Text; }
  OpenOptions openOptions() const;
  LocatorOptions locatorOptions() const;
};

// The category the shared options are listed under in every command's --help.
llvm::cl::OptionCategory& commonCategory();
// The category every command-specific option must name (cl::cat(commandCategory())): main
// hides every option outside these two categories (LLVM's own) from --help.
llvm::cl::OptionCategory& commandCategory();
// Copies the parsed shared options into the plain struct (call after ParseCommandLineOptions).
CommonOptions commonOptionsFromCommandLine();

} // namespace procsnap::analyze
