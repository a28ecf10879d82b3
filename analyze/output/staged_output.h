// Files the analyzer writes (export-core, dump): common/util/output_file.h (a temporary name,
// renamed into place when complete), with the temporary file handed to LLVM's signal
// handlers (installed by InitLLVM), which remove it when SIGINT, SIGTERM or SIGHUP end us.
#pragma once

#include "common/util/output_file.h"

#include <llvm/Support/Error.h>

#include <memory>
#include <string>

namespace procsnap::analyze {

llvm::Expected<std::unique_ptr<OutputFile>> createStagedOutput(const std::string& path, bool force);

} // namespace procsnap::analyze
