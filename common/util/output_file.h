// An output file that appears complete or not at all: written under a temporary name in the
// destination's directory (".NAME.tmp.PID.RANDOM", mode 0600: process memory holds secrets,
// O_EXCL|O_NOFOLLOW), synced, then renamed to NAME, so a reader never sees a half-written file
// under the final name. An existing NAME is refused without force; a symbolic link or a
// non-regular file at NAME is always refused. Destroying an uncommitted file removes the
// temporary file. Callers write either sequentially through fd() or positionally with write(),
// leaving holes (a sparse file) where they write nothing.
#pragma once

#include "common/util/result.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace procsnap {

class OutputFile final {
public:
  // Opens the temporary file next to path. Fails before anything is written when the
  // destination exists and force is false, when it is not a regular file (a symlink is never
  // followed nor replaced), or when its directory is not writable.
  static Result<std::unique_ptr<OutputFile>> create(const std::string& path, bool force);

  ~OutputFile(); // removes the temporary file unless commit() succeeded
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  int fd() const { return fd_; } // -1 once committed
  const std::string& path() const { return path_; }
  const std::string& temporaryPath() const { return temp_path_; }

  // Writes bytes at offset. A full disk is "no space left on device while writing PATH".
  Result<void> write(uint64_t offset, std::span<const uint8_t> bytes);
  // Sets the file's size (a hole up to it when larger than what was written).
  Result<void> resize(uint64_t size);
  // Disk space the file uses now (st_blocks), to report how sparse it is; 0 if unknown.
  uint64_t allocatedBytes() const;

  // fsync, close, rename to the final name (not replacing a file that appeared meanwhile
  // unless forced), fsync the directory. On failure the temporary file is removed.
  Result<void> commit();
  // Removes the temporary file now (idempotent).
  void discard();

  // describeWriteError(error, path()).
  Error describeWriteError(const Error& error) const;

private:
  OutputFile() = default;

  int fd_ = -1;
  int dir_fd_ = -1;
  bool force_ = false;
  bool committed_ = false;
  std::string path_;
  std::string name_;      // final name inside the directory
  std::string temp_name_; // temporary name inside the directory; empty once gone
  std::string temp_path_; // directory + temp_name_, for messages and signal handlers
};

// "no space left on device while writing TARGET" for a full disk, else
// "cannot write TARGET: MESSAGE".
Error describeWriteError(const Error& error, const std::string& target);
// The same for a failed system call's errno (ENOSPC and EDQUOT are a full disk).
Error describeWriteError(int err, const std::string& target);

} // namespace procsnap
