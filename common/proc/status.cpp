#include "common/proc/status.h"

#include "common/util/text_scan.h"

#include <charconv>
#include <cstring>

namespace procsnap {

namespace {

Error statusError(std::string_view key, std::string_view value) {
  return Error::make(ErrorCode::Malformed,
                     "status field " + std::string(key) + ": bad value " + quoteForError(value));
}

template <typename Int> bool parseInteger(std::string_view text, Int& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// "1000\t1000\t1000\t1000": real, effective, saved, filesystem.
bool parseIdQuad(std::string_view text, std::array<uint32_t, 4>& out) {
  for (size_t i = 0; i < out.size(); ++i) {
    text = trimBlanks(text);
    size_t stop = text.find_first_of(" \t");
    std::string_view word = text.substr(0, stop);
    if (!parseInteger(word, out[i]))
      return false;
    text = stop == std::string_view::npos ? std::string_view() : text.substr(stop);
  }
  return trimBlanks(text).empty();
}

} // namespace

std::optional<std::string_view> ProcStatus::get(std::string_view key) const {
  for (const auto& [name, value] : fields)
    if (name == key)
      return std::string_view(value);
  return std::nullopt;
}

Result<ProcStatus> parseStatus(std::string_view text) {
  ProcStatus status;
  LineReader lines(text);
  while (auto line = lines.next()) {
    size_t colon = line->find(':');
    if (colon == 0 || colon == std::string_view::npos)
      return Error::make(ErrorCode::Malformed, "status line " + std::to_string(lines.lineNumber()) +
                                                   ": no key in " + quoteForError(*line));
    status.fields.emplace_back(std::string(line->substr(0, colon)),
                               std::string(trimBlanks(line->substr(colon + 1))));
  }

  bool has_pid = false;
  for (const auto& [key, value] : status.fields) {
    bool ok = true;
    if (key == "Name") {
      status.name = value;
    } else if (key == "State") {
      ok = !value.empty();
      if (ok)
        status.state = value.front();
    } else if (key == "Pid") {
      ok = parseInteger(value, status.pid);
      has_pid = ok;
    } else if (key == "PPid") {
      ok = parseInteger(value, status.ppid);
    } else if (key == "Tgid") {
      ok = parseInteger(value, status.tgid);
    } else if (key == "TracerPid") {
      ok = parseInteger(value, status.tracer_pid);
    } else if (key == "Threads") {
      ok = parseInteger(value, status.threads);
    } else if (key == "Uid") {
      ok = parseIdQuad(value, status.uid);
    } else if (key == "Gid") {
      ok = parseIdQuad(value, status.gid);
    }
    if (!ok)
      return statusError(key, value);
  }
  if (!has_pid)
    return Error::make(ErrorCode::Malformed, "status has no Pid field");
  return status;
}

Result<std::vector<AuxvEntry>> parseAuxv(std::span<const std::byte> bytes, int word_size) {
  if (word_size != 8 && word_size != 4)
    return Error::make(ErrorCode::InvalidArgument,
                       "auxv word size must be 4 or 8, not " + std::to_string(word_size));
  const auto word = static_cast<size_t>(word_size);
  auto readWord = [&](size_t offset) -> uint64_t {
    if (word == 8) {
      uint64_t value;
      std::memcpy(&value, bytes.data() + offset, sizeof value);
      return value;
    }
    uint32_t value;
    std::memcpy(&value, bytes.data() + offset, sizeof value);
    return value;
  };

  std::vector<AuxvEntry> entries;
  for (size_t offset = 0; offset + 2 * word <= bytes.size(); offset += 2 * word) {
    AuxvEntry entry{readWord(offset), readWord(offset + word)};
    if (entry.type == 0) // AT_NULL ends the vector
      return entries;
    entries.push_back(entry);
  }
  return Error::make(ErrorCode::Truncated,
                     "auxv of " + std::to_string(bytes.size()) + " bytes ends without AT_NULL");
}

std::string_view auxvTypeName(uint64_t type) {
  // Values from include/uapi/linux/auxvec.h and arch/x86/include/uapi/asm/auxvec.h; some are
  // newer than the libc headers here, so they are spelled out.
  switch (type) {
  case 0:
    return "AT_NULL";
  case 1:
    return "AT_IGNORE";
  case 2:
    return "AT_EXECFD";
  case 3:
    return "AT_PHDR";
  case 4:
    return "AT_PHENT";
  case 5:
    return "AT_PHNUM";
  case 6:
    return "AT_PAGESZ";
  case 7:
    return "AT_BASE";
  case 8:
    return "AT_FLAGS";
  case 9:
    return "AT_ENTRY";
  case 10:
    return "AT_NOTELF";
  case 11:
    return "AT_UID";
  case 12:
    return "AT_EUID";
  case 13:
    return "AT_GID";
  case 14:
    return "AT_EGID";
  case 15:
    return "AT_PLATFORM";
  case 16:
    return "AT_HWCAP";
  case 17:
    return "AT_CLKTCK";
  case 23:
    return "AT_SECURE";
  case 24:
    return "AT_BASE_PLATFORM";
  case 25:
    return "AT_RANDOM";
  case 26:
    return "AT_HWCAP2";
  case 27:
    return "AT_RSEQ_FEATURE_SIZE";
  case 28:
    return "AT_RSEQ_ALIGN";
  case 29:
    return "AT_HWCAP3";
  case 30:
    return "AT_HWCAP4";
  case 31:
    return "AT_EXECFN";
  case 32:
    return "AT_SYSINFO";
  case 33:
    return "AT_SYSINFO_EHDR";
  case 51:
    return "AT_MINSIGSTKSZ";
  default:
    return "";
  }
}

PagemapEntry decodePagemapEntry(uint64_t raw) {
  constexpr uint64_t kPfnMask = (uint64_t{1} << 55) - 1; // bits 0-54
  PagemapEntry entry;
  entry.present = (raw >> 63) & 1;
  entry.swapped = (raw >> 62) & 1;
  entry.file_or_shared_anon = (raw >> 61) & 1;
  entry.uffd_wp = (raw >> 57) & 1;
  entry.exclusive = (raw >> 56) & 1;
  entry.soft_dirty = (raw >> 55) & 1;
  entry.pfn = raw & kPfnMask;
  return entry;
}

} // namespace procsnap
