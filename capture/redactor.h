// --redact: finds literal byte patterns in everything a capture stores (memory chunks,
// module sketches and embedded binaries, metadata strings) and overwrites each match with
// kRedactionFill before the bytes are hashed, compressed or written, recording each match in
// a RedactionManifest (where, how long, which pattern, a keyed hash; never the pattern).
//
// Memory arrives as chunks in increasing address order. A match may span two chunks that
// are contiguous in memory (the end of one region and the start of the next, or two chunks
// of one region): the redactor keeps the previous chunk's bytes unmodified until the next
// chunk has been searched, so the caller must hold each chunk back until the next
// feedMemory() (or finishMemory()) returns. Patterns are at most a page long and chunks at
// least a page, so no match spans three chunks.
#pragma once

#include "common/archive/redaction_manifest.h"
#include "common/model/module_sketch.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace procsnap {

// What replaces every redacted byte: '*' is visible in a hex dump and in `strings` output,
// and keeps metadata strings valid text.
inline constexpr std::byte kRedactionFill{0x2a};
// The longest pattern: one page, the smallest chunk (see above).
inline constexpr size_t kMaxRedactPatternSize = 4096;
// At most this many patterns: each one is a pass over every stored byte.
inline constexpr size_t kMaxRedactPatterns = 64;

class Redactor final {
public:
  // Checks the patterns (1..kMaxRedactPatternSize bytes each) and draws a random salt.
  static Result<Redactor> create(std::vector<std::string> patterns);
  // With a given salt, for tests.
  Redactor(std::vector<std::string> patterns,
           const std::array<std::byte, kRedactionSaltSize>& salt);
  Redactor(Redactor&&) = default;
  Redactor& operator=(Redactor&&) = default;
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  // Memory bytes at address, after every earlier feed's range. bytes must stay valid and
  // untouched by the caller until the next feedMemory() or finishMemory(); the previous
  // range is final (every match in it overwritten) when this returns.
  void feedMemory(uint64_t address, std::span<std::byte> bytes);
  // The last range fed is final when this returns.
  void finishMemory();

  // Overwrites matches in the sketch's pieces (pieces adjacent in the file are searched as
  // one run) and in its record's path. module_index is the sketch's index in
  // metadata.modules.
  void redactModule(uint32_t module_index, ModuleSketch& sketch);

  // Overwrites matches in the metadata's strings: command line, environment, comm, exe, cwd,
  // status fields, region and module paths, thread names, warnings. Metadata bytes are not
  // listed in the manifest; metadata_fields counts the strings changed.
  void redactMetadata(SnapshotMetadata& metadata);

  // The manifest so far: memory entries by address, then module entries.
  RedactionManifest manifest() const;

private:
  struct Range {
    uint64_t begin = 0; // offsets into the pending buffer
    uint64_t end = 0;
  };
  struct Pending {
    uint64_t address = 0;
    std::span<std::byte> bytes;
    std::vector<Range> fills;
  };

  // Every match (overlapping ones too) of every pattern in bytes; calls found(pattern, offset).
  template <typename Found> void search(std::span<const std::byte> bytes, Found&& found) const;
  void record(RedactionSpace space, uint32_t module_index, uint64_t location, uint32_t pattern);
  // Overwrites the fills of one buffer and counts the distinct bytes.
  void applyFills(std::span<std::byte> bytes, std::vector<Range>& fills);
  bool redactString(std::string& text);

  std::vector<std::string> patterns_;
  std::vector<Sha256Digest> pattern_hashes_;
  size_t longest_ = 0;
  RedactionManifest manifest_;
  std::optional<Pending> previous_;
};

} // namespace procsnap
