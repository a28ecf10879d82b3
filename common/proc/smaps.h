// /proc/PID/smaps: a maps line followed by "Key: value [kB]" lines and "VmFlags: ...".
#pragma once

#include "common/proc/maps.h"

#include <optional>
#include <utility>

namespace procsnap {

struct SmapsEntry {
  MapsEntry map;
  // Every "Key: N" line in file order. Values with a "kB" unit are kept in kB as printed
  // (Rss, Pss, Swap, ...); unitless ones (THPeligible, ProtectionKey) as they are.
  std::vector<std::pair<std::string, uint64_t>> fields;
  std::vector<std::string> vm_flags; // two-letter mnemonics: "rd", "wr", "dd", ...

  std::optional<uint64_t> field(std::string_view name) const;
  bool hasVmFlag(std::string_view flag) const;
  bool dontDump() const { return hasVmFlag("dd"); }
};

Result<std::vector<SmapsEntry>> parseSmaps(std::string_view text);

} // namespace procsnap
