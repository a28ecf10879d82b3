#include "capture/capture_report.h"

#include "capture/progress.h"
#include "common/archive/metadata_codec.h"
#include "common/util/terminal_text.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace procsnap {
namespace {

std::string seconds(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", value);
  return text;
}

// Phases in pipeline order; others (if the stats grow) follow alphabetically.
constexpr const char* kPhaseOrder[] = {"freeze",  "metadata", "copy",  "thaw",
                                       "modules", "compress", "write", "fsync"};

} // namespace

std::string formatStatsText(const CaptureOutcome& outcome) {
  const CaptureStats& stats = outcome.stats;
  std::string text;
  auto line = [&](std::string_view key, const std::string& value) {
    std::string padded(key);
    padded.resize(std::max<size_t>(padded.size() + 1, 26), ' ');
    text += padded + escapeForTerminal(value) + "\n"; // paths and warnings quote /proc text
  };
  line("output", outcome.output_path);
  line("result", outcome.partial ? "partial (" + outcome.partial_reason + ")" : "complete");
  line("target pause", seconds(stats.pause_seconds));
  for (const char* phase : kPhaseOrder)
    if (auto it = stats.phase_seconds.find(phase); it != stats.phase_seconds.end())
      line(std::string("  ") + phase, seconds(it->second));
  for (const auto& [phase, value] : stats.phase_seconds) {
    bool known = false;
    for (const char* p : kPhaseOrder)
      known = known || phase == p;
    if (!known)
      line("  " + phase, seconds(value));
  }
  line("threads", std::to_string(stats.threads));
  line("regions", std::to_string(outcome.regions));
  line("modules", std::to_string(outcome.modules));
  line("bytes copied", Progress::formatBytes(stats.bytes_copied));
  if (stats.bytes_recopied != 0)
    line("bytes copied again",
         Progress::formatBytes(stats.bytes_recopied) + " (written while --precopy copied)");
  line("bytes stored", Progress::formatBytes(stats.bytes_stored) + " in " +
                           std::to_string(stats.chunks) + " chunks");
  std::string ratio;
  if (stats.bytes_compressed != 0) {
    char r[32];
    std::snprintf(r, sizeof r, " (ratio %.2f)",
                  static_cast<double>(stats.bytes_stored) /
                      static_cast<double>(stats.bytes_compressed));
    ratio = r;
  }
  line("bytes compressed", Progress::formatBytes(stats.bytes_compressed) + ratio);
  for (const auto& [reason, bytes] : stats.bytes_skipped)
    line("skipped " + reason, Progress::formatBytes(bytes));
  if (outcome.redactions != 0)
    line("redactions", std::to_string(outcome.redactions) + " matches, " +
                           Progress::formatBytes(outcome.redacted_bytes));
  line("archive size", Progress::formatBytes(outcome.archive_bytes));
  if (stats.compressed_while_frozen)
    line("note", "over the --max-buffer budget: some chunks were compressed while frozen");
  for (const std::string& warning : outcome.warnings)
    line("warning", warning);
  return text;
}

std::string formatOutcomeJson(const CaptureOutcome& outcome) {
  nlohmann::json doc;
  doc["schema_version"] = kCaptureJsonSchemaVersion;
  doc["result"] = outcome.partial ? "partial" : "success";
  doc["exit_code"] = toInt(outcome.exit_code);
  doc["output"] = outcome.output_path;
  doc["pid"] = outcome.pid;
  doc["archive_bytes"] = outcome.archive_bytes;
  doc["partial"] = outcome.partial;
  // null unless partial: the convention of analyze's JSON (docs/JSON.md) for unknown values.
  doc["partial_reason"] =
      outcome.partial ? nlohmann::json(outcome.partial_reason) : nlohmann::json(nullptr);
  doc["regions"] = outcome.regions;
  doc["modules"] = outcome.modules;
  doc["redactions"] = outcome.redactions;
  doc["redacted_bytes"] = outcome.redacted_bytes;
  doc["warnings"] = outcome.warnings;
  // The same encoding as the archive's stats, so tools parse one schema.
  nlohmann::json stats = nlohmann::json::parse(encodeCaptureStats(outcome.stats), nullptr, false);
  if (stats.is_discarded())
    stats = nlohmann::json::object();
  doc["stats"] = std::move(stats);
  // Invalid UTF-8 in a path becomes U+FFFD instead of throwing.
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string formatErrorJson(const Error& error, int exit_code) {
  nlohmann::json doc;
  doc["schema_version"] = kCaptureJsonSchemaVersion;
  doc["result"] = "error";
  doc["exit_code"] = exit_code;
  doc["error"] = error.message;
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace procsnap
