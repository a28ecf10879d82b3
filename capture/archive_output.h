// Where the archive goes: a staged file (common/util/output_file.h: written under a temporary name,
// renamed into place on commit) whose temporary name the SignalGuard removes if a signal ends
// the capture, or standard output used as is (a pipe or a file the shell opened).
#pragma once

#include "common/util/output_file.h"
#include "common/util/result.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace procsnap {

class ArchiveOutput final {
public:
  // The staged file for path; see OutputFile::create.
  static Result<std::unique_ptr<ArchiveOutput>> create(const std::string& path, bool force);
  // Standard output; refuses a terminal.
  static Result<std::unique_ptr<ArchiveOutput>> standardOutput();

  ~ArchiveOutput(); // removes the temporary file unless commit() succeeded
  ArchiveOutput(const ArchiveOutput&) = delete;
  ArchiveOutput& operator=(const ArchiveOutput&) = delete;

  int fd() const;
  const std::string& path() const { return path_; } // final path, or "-"

  // For a file: OutputFile::commit. For standard output: fsync when it is a regular file,
  // nothing for a pipe.
  Result<void> commit();

  // "no space left on device while writing FILE" and the like, for a failed write.
  Error describeWriteError(const Error& error) const;

private:
  ArchiveOutput() = default;

  std::unique_ptr<OutputFile> file_; // null for standard output
  std::string path_;
};

// "COMM.PID.YYYYMMDDTHHMMSSZ.psnap", with characters that do not belong in a file name
// (slash, control characters, leading dot) replaced by '_'.
std::string defaultOutputName(std::string_view comm, pid_t pid, int64_t unix_seconds);

} // namespace procsnap
