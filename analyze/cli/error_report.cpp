#include "analyze/cli/error_report.h"

#include "analyze/cli/exit_codes.h"
#include "common/util/terminal_text.h"

#include <llvm/Support/raw_ostream.h>

namespace procsnap::analyze {

int reportError(llvm::Error error) {
  std::string message = llvm::toString(std::move(error));
  return reportError(llvm::StringRef(message));
}

int reportError(llvm::StringRef message) {
  llvm::outs().flush();
  llvm::errs() << "procsnap-analyze: error: " << procsnap::escapeForTerminal(message) << "\n";
  return kExitError;
}

} // namespace procsnap::analyze
