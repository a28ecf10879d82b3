// procsnap-analyze COMMAND [OPTIONS] SOURCE...: parses the command line and runs the chosen
// row of the command table (analyze/cli/command_table.h).
#include "analyze/cli/command_line.h"
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "common/util/version.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/ErrorHandling.h>
#include <llvm/Support/InitLLVM.h>
#include <llvm/Support/Signals.h>
#include <llvm/Support/raw_ostream.h>

#include <new>
#include <unistd.h>

using namespace procsnap::analyze;

namespace {

// Out of memory anywhere (ours, the standard library's or LLVM's allocations): one error line
// and exit 1, never LLVM's default handler's abort with a stack dump. Temporary output files
// registered for removal on a signal are removed first. Only write(2) and _exit(2) after that:
// no allocation can succeed now.
[[noreturn]] void exitOutOfMemory() {
  llvm::sys::RunInterruptHandlers();
  static constexpr char kMessage[] = "procsnap-analyze: error: out of memory\n";
  (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1); // nothing left to do if it fails
  ::_exit(kExitError);
}

void installOutOfMemoryHandlers() {
  std::set_new_handler([] { exitOutOfMemory(); });
  llvm::install_bad_alloc_error_handler([](void*, const char*, bool) { exitOutOfMemory(); },
                                        nullptr);
}

} // namespace

int main(int argc, char** argv) {
  llvm::InitLLVM init(argc, argv);
  installOutOfMemoryHandlers(); // after InitLLVM, which installs LLVM's aborting one
  // Every command exists, even one that declares no options; --help lists only ours.
  llvm::cl::HideUnrelatedOptions({&commandCategory(), &commonCategory()});
  for (const CommandRow& row : kCommandTable)
    llvm::cl::HideUnrelatedOptions({&commandCategory(), &commonCategory()}, subcommand(row.name));
  llvm::cl::SetVersionPrinter(
      [](llvm::raw_ostream& os) { os << "procsnap-analyze " << procsnap::toolVersion() << "\n"; });
  ReorderedCommandLine command_line = commandFirst(argc, argv);
  std::vector<const char*>& args = command_line.args;
  // LLVM's own diagnostics name the binary's full path and its generic help; ours are one
  // error line and the command's usage (command_line.h).
  std::string llvm_errors;
  llvm::raw_string_ostream errors(llvm_errors);
  if (!llvm::cl::ParseCommandLineOptions(static_cast<int>(args.size()), args.data(),
                                         "procsnap-analyze: analyze process snapshots offline\n\n"
                                         "  procsnap-analyze COMMAND [OPTIONS] SOURCE...\n"
                                         "  procsnap-analyze COMMAND --help\n",
                                         &errors)) {
    errors.flush();
    return reportUsageError(llvm_errors, command_line.command);
  }
  if (command_line.command)
    return command_line.command->run(commonOptionsFromCommandLine());
  return reportUsageError("no command given", nullptr);
}
