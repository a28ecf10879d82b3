#include "common/proc/smaps.h"

#include "common/util/text_scan.h"

#include <algorithm>

namespace procsnap {

namespace {

// A field line starts with a key made of letters, digits and '_' and then ':'. A maps header
// line never does: it has a '-' (address range) before its first ':'.
std::optional<std::string_view> fieldKey(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos)
    return std::nullopt;
  std::string_view key = line.substr(0, colon);
  bool word = std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!word)
    return std::nullopt;
  return key;
}

Error lineError(ErrorCode code, size_t line_number, const std::string& message) {
  return Error::make(code, "smaps line " + std::to_string(line_number) + ": " + message);
}

} // namespace

std::optional<uint64_t> SmapsEntry::field(std::string_view name) const {
  for (const auto& [key, value] : fields)
    if (key == name)
      return value;
  return std::nullopt;
}

bool SmapsEntry::hasVmFlag(std::string_view flag) const {
  return std::find(vm_flags.begin(), vm_flags.end(), flag) != vm_flags.end();
}

Result<std::vector<SmapsEntry>> parseSmaps(std::string_view text) {
  std::vector<SmapsEntry> entries;
  LineReader lines(text);
  uint64_t previous_end = 0;
  // Fields of a zero-length entry are read and dropped with it, as parseMaps drops the entry.
  bool skipping_entry = false;
  SmapsEntry* current = nullptr;

  while (auto line = lines.next()) {
    size_t number = lines.lineNumber();
    auto key = fieldKey(*line);
    if (!key) {
      auto map = parseMapsLine(*line);
      if (!map.ok())
        return lineError(ErrorCode::Malformed, number, map.error().message);
      if (map->size() == 0) {
        skipping_entry = true;
        current = nullptr;
        continue;
      }
      if (map->start < previous_end)
        return lineError(ErrorCode::TornRead, number,
                         "entry at " + hexString(map->start) +
                             " starts below the end of the previous one " +
                             hexString(previous_end) + " (the file changed while it was read)");
      previous_end = map->end;
      skipping_entry = false;
      entries.push_back(SmapsEntry{std::move(map).value(), {}, {}});
      current = &entries.back();
      continue;
    }

    if (!current && !skipping_entry)
      return lineError(ErrorCode::Malformed, number,
                       "field before the first mapping in " + quoteForError(*line));
    std::string_view value = trimBlanks(line->substr(key->size() + 1));

    if (*key == "VmFlags") {
      if (!current)
        continue;
      while (!value.empty()) {
        size_t space = value.find(' ');
        std::string_view flag = value.substr(0, space);
        if (!flag.empty())
          current->vm_flags.emplace_back(flag);
        value = space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
      }
      continue;
    }

    TextScanner scan(value);
    auto number_value = scan.dec64();
    if (!number_value)
      return lineError(ErrorCode::Malformed, number, "bad value in " + quoteForError(*line));
    scan.skipSpaces();
    std::string_view unit = scan.rest();
    if (!unit.empty() && unit != "kB")
      return lineError(ErrorCode::Malformed, number, "unknown unit in " + quoteForError(*line));
    if (current)
      current->fields.emplace_back(std::string(*key), *number_value);
  }
  return entries;
}

} // namespace procsnap
