// Fuzzes the /proc parsers with one input for all of them: maps (whole file and line by
// line), smaps, status, auxv (64- and 32-bit words) and pagemap entries. Besides "no crash,
// no hang", a maps line that parses must parse again, to the same entry, after formatMapsLine.
#include "common/proc/maps.h"
#include "common/proc/smaps.h"
#include "common/proc/status.h"
#include "fuzz/fuzz_support.h"

#include <cstring>

namespace {

using namespace procsnap;

void checkMapsLine(std::string_view line) {
  auto entry = parseMapsLine(line);
  if (!entry.ok()) {
    fuzz::checkErrorMessage(entry.error().message);
    return;
  }
  const std::string formatted = formatMapsLine(*entry);
  auto again = parseMapsLine(formatted);
  if (!again.ok())
    fuzz::propertyFailed("formatted maps line does not parse",
                         formatted + " / " + again.error().message);
  if (!(*again == *entry))
    fuzz::propertyFailed("maps line changes when formatted and parsed again", formatted);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto maps = parseMaps(text);
  if (maps.ok()) {
    uint64_t previous_end = 0;
    for (const auto& entry : *maps) {
      if (entry.end <= entry.start || entry.start < previous_end)
        fuzz::propertyFailed("parseMaps returned unsorted or empty entries", formatMapsLine(entry));
      previous_end = entry.end;
    }
  } else {
    fuzz::checkErrorMessage(maps.error().message);
  }
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t newline = text.find('\n', begin);
    const size_t end = newline == std::string_view::npos ? text.size() : newline;
    checkMapsLine(text.substr(begin, end - begin));
    if (newline == std::string_view::npos)
      break;
    begin = newline + 1;
  }

  auto smaps = parseSmaps(text);
  if (smaps.ok()) {
    for (const auto& entry : *smaps)
      (void)entry.dontDump(); // walks the flags
  } else {
    fuzz::checkErrorMessage(smaps.error().message);
  }

  auto status = parseStatus(text);
  if (status.ok())
    (void)status->get("Name");
  else
    fuzz::checkErrorMessage(status.error().message);

  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  for (int word_size : {8, 4}) {
    auto auxv = parseAuxv(bytes, word_size);
    if (auxv.ok()) {
      for (const auto& entry : *auxv)
        (void)auxvTypeName(entry.type);
    } else {
      fuzz::checkErrorMessage(auxv.error().message);
    }
  }

  for (size_t at = 0; at + 8 <= size; at += 8) {
    uint64_t raw = 0;
    std::memcpy(&raw, data + at, 8);
    const PagemapEntry entry = decodePagemapEntry(raw);
    if (entry.present != ((raw >> 63) & 1))
      fuzz::propertyFailed("pagemap present bit misread", std::to_string(raw));
  }
  return 0;
}
