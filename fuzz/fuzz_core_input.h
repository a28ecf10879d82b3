// The input of the core fuzz targets: a core file opened from memory as CoreSnapshot::create
// does for a file that open() mapped, never looking up module files on this host, so a run
// depends on the input alone. A refused input has its error message checked.
#pragma once

#include "analyze/sources/core_snapshot.h"
#include "fuzz/fuzz_support.h"

#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include <memory>

namespace procsnap::fuzz {

inline std::unique_ptr<analyze::CoreSnapshot> openFuzzCore(const uint8_t* data, size_t size) {
  analyze::OpenOptions options;
  options.use_original_paths = false;
  auto core = analyze::CoreSnapshot::create(
      "fuzz.core",
      llvm::MemoryBuffer::getMemBufferCopy(
          llvm::StringRef(reinterpret_cast<const char*>(data), size), "fuzz.core"),
      analyze::Compression::None, options);
  if (!core) {
    checkErrorMessage(llvm::toString(core.takeError()));
    return nullptr;
  }
  return std::move(*core);
}

} // namespace procsnap::fuzz
