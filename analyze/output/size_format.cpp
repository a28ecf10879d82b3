#include "analyze/output/size_format.h"

#include <cstdio>

namespace procsnap::analyze {

std::string_view unitName(SizeUnit unit) {
  switch (unit) {
  case SizeUnit::KiB:
    return "KiB";
  case SizeUnit::Human:
    return "K/M/G";
  case SizeUnit::Bytes:
    return "bytes";
  }
  return "KiB";
}

std::string formatSize(uint64_t bytes, SizeUnit unit) {
  if (unit == SizeUnit::Bytes)
    return std::to_string(bytes);
  if (unit == SizeUnit::KiB)
    return std::to_string(bytes / 1024 + (bytes % 1024 != 0));
  if (bytes == 0)
    return "0";
  if (bytes < 1024)
    return std::to_string(bytes) + "B";
  static constexpr char kSuffixes[] = {'K', 'M', 'G', 'T', 'P', 'E'};
  double value = static_cast<double>(bytes) / 1024;
  size_t suffix = 0;
  while (value >= 1024 && suffix + 1 < sizeof kSuffixes) {
    value /= 1024;
    ++suffix;
  }
  char text[32];
  if (value < 10 && value != static_cast<double>(static_cast<uint64_t>(value)))
    std::snprintf(text, sizeof text, "%.1f%c", value, kSuffixes[suffix]);
  else
    std::snprintf(text, sizeof text, "%.0f%c", value, kSuffixes[suffix]);
  return text;
}

} // namespace procsnap::analyze
