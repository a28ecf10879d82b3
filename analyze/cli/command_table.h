// The commands of procsnap-analyze: one row per command, driving the subcommands, the help
// text and the dispatch in main (like bloaty's data-source table). Each command lives in its
// own cmd_NAME.cpp, which defines its run function and registers its own options with
//   llvm::cl::opt<...> X("x", llvm::cl::sub(subcommand("NAME")),
//                        llvm::cl::cat(commandCategory()), ...);
// and its positional SOURCE list the same way; it reads them in its run function into a plain
// options struct and passes that to a function that tests can call without a command line.
#pragma once

#include "analyze/cli/common_options.h"
#include "analyze/cli/exit_codes.h"

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/StringRef.h>
#include <llvm/Support/CommandLine.h>

namespace procsnap::analyze {

// Called by main after the command line is parsed; returns the exit code (kExit*).
using RunCommand = int (*)(const CommonOptions& options);

int runInfo(const CommonOptions& options);
int runMaps(const CommonOptions& options);
int runSections(const CommonOptions& options);
int runSymbolize(const CommonOptions& options);
int runDump(const CommonOptions& options);
int runRead(const CommonOptions& options);
int runStrings(const CommonOptions& options);
int runVerify(const CommonOptions& options);
int runDiff(const CommonOptions& options);
int runExportCore(const CommonOptions& options);
int runBacktrace(const CommonOptions& options);

struct CommandRow {
  const char* name;
  const char* help; // one line, for the command list and the command's --help
  RunCommand run;
};

inline constexpr CommandRow kCommandTable[] = {
    {"info", "Show the process, host, capture statistics, threads and modules of a snapshot",
     runInfo},
    {"maps", "List the memory regions like pmap -X, with page states and bytes stored", runMaps},
    {"sections", "Show each module's segments and sections at runtime addresses", runSections},
    {"symbolize", "Name addresses: region, module, section, symbol and file:line", runSymbolize},
    {"dump", "Write memory ranges to files (sparse where nothing is stored)", runDump},
    {"read", "Show memory as a hex dump or typed values", runRead},
    {"strings", "Find printable strings in the stored memory", runStrings},
    {"verify", "Check an archive's checksums and content hashes", runVerify},
    {"diff", "Show what changed between snapshots: regions, bytes, symbols, strings", runDiff},
    {"export-core", "Write a snapshot as an ELF core file that gdb loads", runExportCore},
    {"backtrace", "Unwind every thread's stack offline (CFI through libdwfl), like eu-stack",
     runBacktrace},
    {"bt", "Alias of backtrace", runBacktrace},
};

// The cl::SubCommand of a row of kCommandTable, created on first use (so a command's options
// can name it during static initialization). Aborts on a name not in the table: a
// programming error.
llvm::cl::SubCommand& subcommand(llvm::StringRef name);

} // namespace procsnap::analyze
