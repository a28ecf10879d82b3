// SnapshotMetadata <-> the JSON document stored in METADATA blocks (docs/FORMAT.md, section
// "Metadata JSON"). Addresses are "0x…" strings, other integers JSON numbers, and a string
// that is not valid UTF-8 is written as {"hex": "…"} so nothing is lost. Decoding validates
// every type it reads, ignores unknown members, and never throws.
#pragma once

#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <string>
#include <string_view>

namespace procsnap {

// Version of the metadata document ("metadata_version"); a decoder refuses newer ones.
inline constexpr uint32_t kMetadataVersion = 1;

// Limits on what one decoded document may cost, by what its records take in memory rather
// than by the size of their text: a 3-byte "{}" decodes into a ~150-byte record, so a 256 MiB
// document (docs/FORMAT.md) could otherwise grow past a gigabyte. Every element stored while
// decoding is charged its sizeof plus the bytes of its strings; a document that charges more
// than kMaxDecodedDocumentBytes is refused. A real process near the kernel's default
// vm.max_map_count (65530 regions, each with its smaps fields) charges about 60 MiB.
inline constexpr uint64_t kMaxDecodedDocumentBytes = 160ull << 20;
// Counts no real process reaches: 16 x the default vm.max_map_count of regions, a mapped
// file per default-limit region, and more threads than the default threads-max of a 64 GiB
// host allows one process.
inline constexpr uint64_t kMaxRegions = 1u << 20;
inline constexpr uint64_t kMaxModules = 1u << 16;
inline constexpr uint64_t kMaxThreads = 1u << 18;
// Sketch pieces in one module head (a sketch has a few per section and symbol table).
inline constexpr uint64_t kMaxModulePieces = 1u << 18;

std::string encodeMetadata(const SnapshotMetadata& metadata);
Result<SnapshotMetadata> decodeMetadata(std::string_view json);

std::string encodeCaptureStats(const CaptureStats& stats);
Result<CaptureStats> decodeCaptureStats(std::string_view json);

// The STATS block: the final CaptureStats, and whether the writer learned after the METADATA
// block was written that the capture is partial.
struct StatsBlock {
  CaptureStats stats;
  bool partial = false;
  std::string partial_reason;
};

std::string encodeStatsBlock(const StatsBlock& block);
Result<StatsBlock> decodeStatsBlock(std::string_view json);

// The JSON head of a MODULE block: the record, the file size and the pieces' [offset, length].
struct ModuleBlockHead {
  ModuleRecord record;
  uint64_t file_size = 0;
  std::vector<std::pair<uint64_t, uint64_t>> pieces; // offset, length
};

std::string encodeModuleHead(const ModuleBlockHead& head);
Result<ModuleBlockHead> decodeModuleHead(std::string_view json);

} // namespace procsnap
