// procsnap-analyze COMMAND [OPTIONS] SOURCE...: parses the command line and runs the chosen
// row of the command table (analyze/cli/command_table.h).
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "common/util/version.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/InitLLVM.h>
#include <llvm/Support/raw_ostream.h>

using namespace procsnap::analyze;

int main(int argc, char** argv) {
  llvm::InitLLVM init(argc, argv);
  // Every command exists, even one that declares no options; --help lists only ours.
  llvm::cl::HideUnrelatedOptions({&commandCategory(), &commonCategory()});
  for (const CommandRow& row : kCommandTable)
    llvm::cl::HideUnrelatedOptions({&commandCategory(), &commonCategory()}, subcommand(row.name));
  llvm::cl::SetVersionPrinter(
      [](llvm::raw_ostream& os) { os << "procsnap-analyze " << procsnap::toolVersion() << "\n"; });
  if (!llvm::cl::ParseCommandLineOptions(argc, argv,
                                         "procsnap-analyze: analyze process snapshots offline\n\n"
                                         "  procsnap-analyze COMMAND [OPTIONS] SOURCE...\n"
                                         "  procsnap-analyze COMMAND --help\n",
                                         &llvm::errs()))
    return kExitError;
  for (const CommandRow& row : kCommandTable) {
    if (subcommand(row.name))
      return row.run(commonOptionsFromCommandLine());
  }
  return reportError("no command given (try --help)");
}
