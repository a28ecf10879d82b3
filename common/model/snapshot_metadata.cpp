#include "common/model/snapshot_metadata.h"

#include <array>
#include <utility>

namespace procsnap {

namespace {

// The names are part of the archive format (docs/FORMAT.md): never rename one.
constexpr std::array<std::pair<PageState, std::string_view>, 9> kPageStateNames = {{
    {PageState::Stored, "stored"},
    {PageState::Zero, "zero"},
    {PageState::NotPresent, "not-present"},
    {PageState::ExcludedDontDump, "excluded-dontdump"},
    {PageState::ExcludedFilter, "excluded-filter"},
    {PageState::Unreadable, "unreadable"},
    {PageState::Lost, "lost"},
    {PageState::Redacted, "redacted"},
    {PageState::FromFile, "from-file"},
}};

} // namespace

std::string_view toString(PageState state) {
  for (const auto& [value, name] : kPageStateNames)
    if (value == state)
      return name;
  return "unknown";
}

std::optional<PageState> pageStateFromString(std::string_view name) {
  for (const auto& [value, text] : kPageStateNames)
    if (text == name)
      return value;
  return std::nullopt;
}

} // namespace procsnap
