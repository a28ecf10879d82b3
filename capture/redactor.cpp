#include "capture/redactor.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/random.h>

namespace procsnap {

namespace {

std::span<const std::byte> asBytes(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

} // namespace

Result<Redactor> Redactor::create(std::vector<std::string> patterns) {
  if (patterns.size() > kMaxRedactPatterns)
    return Error::make(ErrorCode::InvalidArgument,
                       "at most " + std::to_string(kMaxRedactPatterns) + " --redact patterns");
  for (size_t i = 0; i < patterns.size(); ++i)
    if (patterns[i].empty() || patterns[i].size() > kMaxRedactPatternSize)
      return Error::make(ErrorCode::InvalidArgument,
                         "--redact pattern " + std::to_string(i) + " has " +
                             std::to_string(patterns[i].size()) + " bytes; a pattern holds 1 to " +
                             std::to_string(kMaxRedactPatternSize));
  std::array<std::byte, kRedactionSaltSize> salt{};
  size_t filled = 0;
  while (filled < salt.size()) {
    const ssize_t n = ::getrandom(salt.data() + filled, salt.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return Error::make(ErrorCode::Generic,
                         std::string("cannot draw a random salt: ") + std::strerror(errno));
    }
    filled += static_cast<size_t>(n);
  }
  return Redactor(std::move(patterns), salt);
}

Redactor::Redactor(std::vector<std::string> patterns,
                   const std::array<std::byte, kRedactionSaltSize>& salt)
    : patterns_(std::move(patterns)) {
  manifest_.pattern_count = static_cast<uint32_t>(patterns_.size());
  manifest_.fill = kRedactionFill;
  manifest_.salt = salt;
  for (const std::string& pattern : patterns_) {
    pattern_hashes_.push_back(redactionHash(salt, asBytes(pattern)));
    longest_ = std::max(longest_, pattern.size());
  }
}

template <typename Found>
void Redactor::search(std::span<const std::byte> bytes, Found&& found) const {
  for (uint32_t p = 0; p < patterns_.size(); ++p) {
    const std::string& pattern = patterns_[p];
    if (pattern.empty() || pattern.size() > bytes.size())
      continue;
    const auto* begin = reinterpret_cast<const char*>(bytes.data());
    const char* at = begin;
    size_t left = bytes.size();
    // memmem, then one byte on: overlapping matches ("abab" in "ababab") are all found, so
    // no complete occurrence survives the overwrite.
    while (left >= pattern.size()) {
      const void* hit = ::memmem(at, left, pattern.data(), pattern.size());
      if (!hit)
        break;
      const auto* match = static_cast<const char*>(hit);
      found(p, static_cast<uint64_t>(match - begin));
      left -= static_cast<size_t>(match + 1 - at);
      at = match + 1;
    }
  }
}

void Redactor::record(RedactionSpace space, uint32_t module_index, uint64_t location,
                      uint32_t pattern) {
  if (manifest_.entries.size() >= kMaxRedactionEntries) {
    ++manifest_.omitted_entries;
    return;
  }
  RedactionEntry entry;
  entry.space = space;
  entry.location = location;
  entry.length = static_cast<uint32_t>(patterns_[pattern].size());
  entry.pattern = pattern;
  entry.module_index = module_index;
  entry.hash = pattern_hashes_[pattern];
  manifest_.entries.push_back(entry);
}

void Redactor::applyFills(std::span<std::byte> bytes, std::vector<Range>& fills) {
  std::sort(fills.begin(), fills.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  uint64_t covered_to = 0;
  for (const Range& range : fills) {
    const uint64_t begin = std::max(range.begin, covered_to);
    const uint64_t end = std::min<uint64_t>(range.end, bytes.size());
    if (begin < end) {
      std::memset(bytes.data() + begin, std::to_integer<int>(kRedactionFill), end - begin);
      manifest_.bytes_redacted += end - begin;
    }
    covered_to = std::max(covered_to, end);
  }
  fills.clear();
}

void Redactor::feedMemory(uint64_t address, std::span<std::byte> bytes) {
  Pending current{address, bytes, {}};
  search(bytes, [&](uint32_t pattern, uint64_t offset) {
    record(RedactionSpace::Memory, 0, address + offset, pattern);
    current.fills.push_back({offset, offset + patterns_[pattern].size()});
  });
  // Matches across the junction with the previous range, searched in a small window made of
  // the previous range's tail and this range's head (both still unmodified).
  if (previous_ && longest_ > 1 && previous_->address + previous_->bytes.size() == address) {
    const size_t tail = std::min(longest_ - 1, previous_->bytes.size());
    const size_t head = std::min(longest_ - 1, bytes.size());
    std::vector<std::byte> window(tail + head);
    std::memcpy(window.data(), previous_->bytes.data() + previous_->bytes.size() - tail, tail);
    std::memcpy(window.data() + tail, bytes.data(), head);
    const uint64_t window_address = address - tail;
    const uint64_t previous_size = previous_->bytes.size();
    search(window, [&](uint32_t pattern, uint64_t offset) {
      const uint64_t end = offset + patterns_[pattern].size();
      if (offset >= tail || end <= tail)
        return; // wholly inside one range: found by that range's own search
      record(RedactionSpace::Memory, 0, window_address + offset, pattern);
      previous_->fills.push_back({previous_size - tail + offset, previous_size});
      current.fills.push_back({0, end - tail});
    });
  }
  finishMemory();
  previous_ = std::move(current);
}

void Redactor::finishMemory() {
  if (!previous_)
    return;
  applyFills(previous_->bytes, previous_->fills);
  previous_.reset();
}

void Redactor::redactModule(uint32_t module_index, ModuleSketch& sketch) {
  redactString(sketch.record.path);
  auto& pieces = sketch.pieces;
  size_t first = 0;
  while (first < pieces.size()) {
    // A run of pieces that are adjacent in the file is one stream of bytes.
    size_t last = first + 1;
    uint64_t run_size = pieces[first].bytes.size();
    while (last < pieces.size() &&
           pieces[last - 1].offset + pieces[last - 1].bytes.size() == pieces[last].offset) {
      run_size += pieces[last].bytes.size();
      ++last;
    }
    std::vector<std::byte> joined;
    std::span<std::byte> run = pieces[first].bytes;
    if (last - first > 1) {
      joined.reserve(run_size);
      for (size_t i = first; i < last; ++i)
        joined.insert(joined.end(), pieces[i].bytes.begin(), pieces[i].bytes.end());
      run = joined;
    }
    std::vector<Range> fills;
    const uint64_t base = pieces[first].offset;
    search(run, [&](uint32_t pattern, uint64_t offset) {
      record(RedactionSpace::Module, module_index, base + offset, pattern);
      fills.push_back({offset, offset + patterns_[pattern].size()});
    });
    if (!fills.empty()) {
      applyFills(run, fills);
      if (!joined.empty()) {
        size_t at = 0;
        for (size_t i = first; i < last; ++i) {
          std::memcpy(pieces[i].bytes.data(), joined.data() + at, pieces[i].bytes.size());
          at += pieces[i].bytes.size();
        }
      }
    }
    first = last;
  }
}

bool Redactor::redactString(std::string& text) {
  std::vector<Range> fills;
  search(asBytes(text), [&](uint32_t pattern, uint64_t offset) {
    fills.push_back({offset, offset + patterns_[pattern].size()});
  });
  if (fills.empty())
    return false;
  // Metadata bytes are not memory: they are not counted in bytes_redacted.
  for (const Range& range : fills)
    std::fill(text.begin() + static_cast<std::ptrdiff_t>(range.begin),
              text.begin() + static_cast<std::ptrdiff_t>(range.end),
              static_cast<char>(kRedactionFill));
  ++manifest_.metadata_fields;
  return true;
}

void Redactor::redactMetadata(SnapshotMetadata& metadata) {
  ProcessInfo& process = metadata.process;
  for (std::string& arg : process.cmdline)
    redactString(arg);
  for (std::string& variable : process.environ)
    redactString(variable);
  redactString(process.comm);
  redactString(process.exe);
  redactString(process.cwd);
  for (RegionRecord& region : metadata.regions)
    redactString(region.smaps.map.path);
  for (auto& field : process.status)
    redactString(field.second);
  for (ModuleRecord& module : metadata.modules)
    redactString(module.path); // redactModule() did the sketch's copy of the record
  for (ThreadRecord& thread : metadata.threads)
    redactString(thread.name);
  for (std::string& warning : metadata.warnings)
    redactString(warning);
}

RedactionManifest Redactor::manifest() const {
  RedactionManifest manifest = manifest_;
  std::stable_sort(manifest.entries.begin(), manifest.entries.end(),
                   [](const RedactionEntry& a, const RedactionEntry& b) {
                     if (a.space != b.space)
                       return a.space < b.space;
                     if (a.module_index != b.module_index)
                       return a.module_index < b.module_index;
                     if (a.location != b.location)
                       return a.location < b.location;
                     return a.pattern < b.pattern;
                   });
  return manifest;
}

} // namespace procsnap
