// The one-line error format every command uses: "procsnap-analyze: error: <message>" on
// stderr. Only main and the command runners decide that an error is fatal.
#pragma once

#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>

namespace procsnap::analyze {

// Prints the error line and returns kExitError.
int reportError(llvm::Error error);
int reportError(llvm::StringRef message);

} // namespace procsnap::analyze
