// Options every command shares (--json, --sysroot, --debug-dir, --salvage), registered once
// in every subcommand under one category, and the plain struct the commands take. Also the
// exit codes and the one-line error format.
#pragma once

#include "analyze/address_space.h"
#include "analyze/module_locator.h"
#include "analyze/printer.h"
#include "analyze/snapshot.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/Error.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace procsnap::analyze {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFindings = 1; // diff: differences found; verify: damage found
inline constexpr int kExitError = 2;

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

// Prints "procsnap-analyze: error: <message>" to stderr and returns kExitError.
int reportError(llvm::Error error);
int reportError(llvm::StringRef message);

// Parses an address or size: "0x1f" (hex) or "31" (decimal). Errors quote the text.
llvm::Expected<uint64_t> parseAddress(llvm::StringRef text);

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
//   Text: "source: PATH" followed by print's output, a blank line between sources.
// Errors are also reported on stderr; returns kExitError when any source failed, else
// kExitOk (or what print returned through findings: set *findings to make it kExitFindings).
using PrintSource = std::function<llvm::Error(OpenedSource& source, Printer& printer)>;
int runForEachSource(llvm::ArrayRef<std::string> paths, const CommonOptions& options,
                     bool build_address_space, const PrintSource& print,
                     const bool* findings = nullptr);

} // namespace procsnap::analyze
