// Where the archive goes. A file is written under a temporary name in the destination
// directory (".NAME.tmp.PID.RANDOM", mode 0600, O_EXCL|O_NOFOLLOW), then fsynced and renamed
// into place, so a reader never sees a half-written archive under the final name. Standard
// output is used as is (a pipe or a file the shell opened).
#pragma once

#include "common/result.h"

#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace procsnap {

class OutputFile final {
public:
  // Opens the temporary file next to path. Fails before anything is written when the
  // destination exists and force is false, when it is not a regular file (a symlink is never
  // followed nor replaced), or when its directory is not writable.
  static Result<std::unique_ptr<OutputFile>> create(const std::string& path, bool force);
  // Standard output; refuses a terminal.
  static Result<std::unique_ptr<OutputFile>> standardOutput();

  ~OutputFile(); // removes the temporary file unless commit() succeeded
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; } // final path, or "-"
  const std::string& temporaryPath() const { return temp_path_; }
  bool isStandardOutput() const { return to_stdout_; }

  // fsync, rename to the final name (not replacing an existing file unless forced), fsync the
  // directory. For standard output: fsync when it is a regular file, nothing for a pipe.
  // On failure the temporary file is removed.
  Result<void> commit();
  // Removes the temporary file now (idempotent).
  void discard();

  // "no space left on device while writing FILE" and the like, for a failed write.
  Error describeWriteError(const Error& error) const;

private:
  OutputFile() = default;

  int fd_ = -1;
  int dir_fd_ = -1;
  bool to_stdout_ = false;
  bool force_ = false;
  bool committed_ = false;
  std::string path_;
  std::string name_;      // final name inside the directory
  std::string temp_name_; // temporary name inside the directory
  std::string temp_path_; // directory + temp_name_, for messages and the signal guard
};

// "COMM.PID.YYYYMMDDTHHMMSSZ.psnap", with characters that do not belong in a file name
// (slash, control characters, leading dot) replaced by '_'.
std::string defaultOutputName(std::string_view comm, pid_t pid, int64_t unix_seconds);

} // namespace procsnap
