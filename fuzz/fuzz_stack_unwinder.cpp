// Fuzzes backtrace's unwinder (analyze/engines/stack_unwinder.h) on ELF cores: the input is a
// core file, opened as fuzz_core_snapshot does; every thread is unwound with the module images
// rebuilt from the core's memory (hostile ELF headers and CFI reach libdwfl) and the frame
// limit must hold. Module files are never looked up on this host, so a run depends on the
// input alone.
#include "analyze/engines/stack_unwinder.h"
#include "analyze/engines/unwind_images.h"
#include "analyze/model/address_space.h"
#include "fuzz/fuzz_core_input.h"

#include <llvm/Support/Error.h>

namespace {

using namespace procsnap;

constexpr size_t kMaxFrames = 32;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<analyze::CoreSnapshot> core = fuzz::openFuzzCore(data, size);
  if (!core)
    return 0;
  analyze::LocatorOptions locator_options;
  locator_options.use_original_paths = false;
  locator_options.debug_dirs = {"/nonexistent-fuzz-debug-dir"};
  analyze::ModuleLocator locator(*core, locator_options);
  auto space = analyze::AddressSpace::build(*core, locator);
  if (!space) {
    llvm::consumeError(space.takeError());
    return 0;
  }
  std::vector<std::string> warnings;
  analyze::UnwindImages images = analyze::buildUnwindImages(*space, warnings);
  analyze::UnwindOptions unwind;
  unwind.max_frames = kMaxFrames;
  for (const analyze::UnwoundThread& thread :
       analyze::unwindThreads(*core, images.images, unwind, warnings)) {
    if (thread.frames.size() > kMaxFrames)
      fuzz::propertyFailed("more frames than --max-frames", std::to_string(thread.frames.size()));
    if (thread.stop_reason.empty())
      fuzz::propertyFailed("a walk ended without a reason", "");
  }
  for (const std::string& warning : warnings)
    fuzz::checkErrorMessage(warning);
  return 0;
}
