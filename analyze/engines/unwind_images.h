// The ELF images libdwfl unwinds with, one per module of a snapshot plus the vdso: the
// module's file (or embedded binary) when the locator found one, otherwise the module's
// mappings copied from the snapshot at their file offsets, which holds .eh_frame_hdr and
// .eh_frame (they lie in a read-only PT_LOAD, which captures store).
#pragma once

#include "analyze/engines/stack_unwinder.h"
#include "analyze/model/address_space.h"

#include <cstdint>
#include <string>
#include <vector>

namespace procsnap::analyze {

struct UnwindImages {
  std::vector<std::vector<uint8_t>> bytes; // owned storage of images[i].elf
  std::vector<UnwindImage> images;
};

// Never fails: a module without an image is left out (its frames then end the CFI walk).
UnwindImages buildUnwindImages(const AddressSpace& space, std::vector<std::string>& warnings);

} // namespace procsnap::analyze
