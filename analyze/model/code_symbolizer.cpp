#include "analyze/model/code_symbolizer.h"

namespace procsnap::analyze {

namespace {

// DWARF parsed and kept by the symbolizer: bounds the memory of symbolizing against large
// debug files.
constexpr size_t kSymbolizerCacheBytes = 64u << 20;

bool dwarfInMemory(const LocatedModule& located) {
  return located.debug_path.empty() && located.where == "embedded" && located.elf->hasDebugInfo();
}

} // namespace

std::unique_ptr<llvm::symbolize::LLVMSymbolizer> createSymbolizer(const LocatorOptions& options) {
  llvm::symbolize::LLVMSymbolizer::Options symbolizer_options;
  symbolizer_options.MaxCacheSize = kSymbolizerCacheBytes;
  symbolizer_options.DebugFileDirectory = options.debug_dirs;
  return std::make_unique<llvm::symbolize::LLVMSymbolizer>(symbolizer_options);
}

bool hasSymbolizerDwarf(const LocatedModule& located) {
  return !located.debug_path.empty() || dwarfInMemory(located);
}

llvm::Expected<llvm::DILineInfo> symbolizeModuleCode(llvm::symbolize::LLVMSymbolizer& symbolizer,
                                                     const LocatedModule& located,
                                                     uint64_t file_vaddr) {
  llvm::object::SectionedAddress address{file_vaddr, llvm::object::SectionedAddress::UndefSection};
  if (dwarfInMemory(located))
    return symbolizer.symbolizeCode(located.elf->object(), address);
  return symbolizer.symbolizeCode(located.debug_path, address);
}

} // namespace procsnap::analyze
