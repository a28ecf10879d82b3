// The command line before and after LLVM's parser: global options may come before the
// command (`procsnap-analyze --json info X`), and a command line LLVM refuses is reported as
// one error line plus the command's usage instead of LLVM's text (which names the binary's
// full path and its generic --help).
#pragma once

#include "analyze/cli/command_table.h"

#include <llvm/ADT/StringRef.h>

#include <string>
#include <vector>

namespace procsnap::analyze {

struct ReorderedCommandLine {
  std::vector<const char*> args;       // argv with the command name moved to args[1]
  const CommandRow* command = nullptr; // the row the command line names, or nullptr
};

// Moves the command name in front of the options that precede it. Only the shared options
// (common_options.h) may precede it; "--sysroot DIR" and "--debug-dir DIR" take their value
// along.
ReorderedCommandLine commandFirst(int argc, char** argv);

// "usage: procsnap-analyze maps [OPTIONS] <source>..." from the command's positional
// arguments; the command list usage for nullptr.
std::string usageLine(const CommandRow* command);

// Reports what LLVM's parser printed (llvm_errors) as "procsnap-analyze: error: ..." and the
// usage line, on stderr; returns kExitError.
int reportUsageError(llvm::StringRef llvm_errors, const CommandRow* command);

} // namespace procsnap::analyze
