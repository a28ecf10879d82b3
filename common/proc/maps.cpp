#include "common/proc/maps.h"

#include "common/util/text_scan.h"

#include <cinttypes>
#include <cstdio>

namespace procsnap {

namespace {

// The kernel pads the fixed columns of a maps line to this width before the path
// (seq_setwidth(m, 25 + sizeof(void *) * 6 - 1) in fs/proc/task_mmu.c, 64-bit kernel).
constexpr size_t kMapsPathColumn = 25 + 8 * 6 - 1;

constexpr std::string_view kDeletedSuffix = " (deleted)";

Error malformed(std::string_view what, std::string_view line) {
  return Error::make(ErrorCode::Malformed,
                     "malformed maps line: " + std::string(what) + " in " + quoteForError(line));
}

} // namespace

std::string Permissions::str() const {
  std::string out(4, '-');
  if (read)
    out[0] = 'r';
  if (write)
    out[1] = 'w';
  if (execute)
    out[2] = 'x';
  out[3] = shared ? 's' : 'p';
  return out;
}

Result<MapsEntry> parseMapsLine(std::string_view line) {
  TextScanner scan(line);
  MapsEntry entry;

  auto start = scan.hex64();
  if (!start)
    return malformed("bad start address", line);
  if (!scan.consume('-'))
    return malformed("expected '-' after start address", line);
  auto end = scan.hex64();
  if (!end)
    return malformed("bad end address", line);
  if (*end < *start)
    return malformed("end address below start address", line);
  entry.start = *start;
  entry.end = *end;

  if (!scan.consume(' '))
    return malformed("expected space after address range", line);
  std::string_view perms = scan.take(4);
  if (perms.size() != 4 || (perms[0] != 'r' && perms[0] != '-') ||
      (perms[1] != 'w' && perms[1] != '-') || (perms[2] != 'x' && perms[2] != '-') ||
      (perms[3] != 's' && perms[3] != 'p'))
    return malformed("bad permissions", line);
  entry.perms.read = perms[0] == 'r';
  entry.perms.write = perms[1] == 'w';
  entry.perms.execute = perms[2] == 'x';
  entry.perms.shared = perms[3] == 's';

  if (!scan.consume(' '))
    return malformed("expected space after permissions", line);
  auto offset = scan.hex64();
  if (!offset)
    return malformed("bad offset", line);
  entry.offset = *offset;

  if (!scan.consume(' '))
    return malformed("expected space after offset", line);
  auto major = scan.hex64();
  if (!major || *major > UINT32_MAX || !scan.consume(':'))
    return malformed("bad device major", line);
  auto minor = scan.hex64();
  if (!minor || *minor > UINT32_MAX)
    return malformed("bad device minor", line);
  entry.dev_major = static_cast<uint32_t>(*major);
  entry.dev_minor = static_cast<uint32_t>(*minor);

  if (!scan.consume(' '))
    return malformed("expected space after device", line);
  auto inode = scan.dec64();
  if (!inode)
    return malformed("bad inode", line);
  entry.inode = *inode;

  if (scan.done())
    return entry; // no path and no trailing space (hand-written input)
  if (!scan.consume(' '))
    return malformed("expected space after inode", line);
  scan.skipSpaces();
  std::string_view path = scan.rest();
  if (path.size() > kDeletedSuffix.size() && path.ends_with(kDeletedSuffix)) {
    path.remove_suffix(kDeletedSuffix.size());
    entry.deleted = true;
  }
  entry.path = std::string(path);
  return entry;
}

Result<std::vector<MapsEntry>> parseMaps(std::string_view text) {
  std::vector<MapsEntry> entries;
  LineReader lines(text);
  uint64_t previous_end = 0;
  while (auto line = lines.next()) {
    auto entry = parseMapsLine(*line);
    if (!entry.ok())
      return Error::make(ErrorCode::Malformed, "line " + std::to_string(lines.lineNumber()) + ": " +
                                                   entry.error().message);
    if (entry->size() == 0)
      continue;
    if (entry->start < previous_end)
      return Error::make(ErrorCode::TornRead, "line " + std::to_string(lines.lineNumber()) +
                                                  ": entry at " + hexString(entry->start) +
                                                  " starts below the end of the previous one " +
                                                  hexString(previous_end) +
                                                  " (the file changed while it was read)");
    previous_end = entry->end;
    entries.push_back(std::move(entry).value());
  }
  return entries;
}

std::string formatMapsLine(const MapsEntry& entry) {
  char prefix[160];
  int length = std::snprintf(prefix, sizeof prefix,
                             "%08" PRIx64 "-%08" PRIx64 " %s %08" PRIx64 " %02" PRIx32 ":%02" PRIx32
                             " %" PRIu64 " ",
                             entry.start, entry.end, entry.perms.str().c_str(), entry.offset,
                             entry.dev_major, entry.dev_minor, entry.inode);
  std::string line(prefix, static_cast<size_t>(length));
  if (entry.path.empty() && !entry.deleted)
    return line;
  if (line.size() < kMapsPathColumn)
    line.append(kMapsPathColumn - line.size(), ' ');
  line += ' ';
  line += entry.path;
  if (entry.deleted)
    line += kDeletedSuffix;
  return line;
}

} // namespace procsnap
