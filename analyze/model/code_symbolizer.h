// The LLVM symbolizer as the commands use it, over the DWARF the module locator found: the
// separate debug file or module file on disk, or an embedded binary with .debug_info.
#pragma once

#include "analyze/model/module_locator.h"

#include <llvm/DebugInfo/Symbolize/Symbolize.h>

#include <memory>

namespace procsnap::analyze {

// A symbolizer with a bounded cache of parsed DWARF, searching the locator's debug dirs.
std::unique_ptr<llvm::symbolize::LLVMSymbolizer> createSymbolizer(const LocatorOptions& options);

// Whether located has DWARF for the symbolizer; then the debug object is an in-memory
// embedded binary when debug_path is empty.
bool hasSymbolizerDwarf(const LocatedModule& located);

// file:line (and DWARF's function name) of a link-time code address of located. Call only
// when hasSymbolizerDwarf(located).
llvm::Expected<llvm::DILineInfo> symbolizeModuleCode(llvm::symbolize::LLVMSymbolizer& symbolizer,
                                                     const LocatedModule& located,
                                                     uint64_t file_vaddr);

} // namespace procsnap::analyze
