// Opening the sources a command names, and the frame every per-source command shares.
#pragma once

#include "analyze/cli/common_options.h"
#include "analyze/model/address_space.h"
#include "analyze/model/module_locator.h"
#include "analyze/model/snapshot.h"
#include "analyze/output/printer.h"

#include <llvm/Support/Error.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace procsnap::analyze {

// One source opened for a command: the snapshot, its module locator (warnings go to the
// printer) and, when asked, its address space. Members are declared in dependency order.
struct OpenedSource {
  std::unique_ptr<Snapshot> snapshot;
  std::unique_ptr<ModuleLocator> locator;
  std::optional<AddressSpace> space; // set when build_address_space

  OpenedSource() = default;
  OpenedSource(OpenedSource&&) = default;
  OpenedSource& operator=(OpenedSource&&) = default;
};
llvm::Expected<OpenedSource> openSource(llvm::StringRef path, const CommonOptions& options,
                                        Printer& printer, bool build_address_space);

// The frame every per-source command shares: creates the printer on stdout, opens each path
// and calls print inside its entry. Output shape (docs/JSON.md):
//   JSON: {"sources": [{"path": ..., "source_kind": "archive", <print's members>}, ...],
//          "warnings": [...]}; a source that fails gets "error": message instead of the rest.
//   Text: print's output alone for one source; for several, a "==> PATH <==" line before each
//   source's block and a blank line between blocks.
// Errors are reported once, on stderr (and in JSON as the entry's "error" member); returns
// kExitError when any source failed, else kExitOk (or what print returned through findings: set
// *findings to make it kExitFindings).
using PrintSource = std::function<llvm::Error(OpenedSource& source, Printer& printer)>;
int runForEachSource(llvm::ArrayRef<std::string> paths, const CommonOptions& options,
                     bool build_address_space, const PrintSource& print,
                     const bool* findings = nullptr);

} // namespace procsnap::analyze
