// An output file that appears complete or not at all: written under a temporary name in the
// destination's directory (".NAME.tmp.PID.RANDOM", mode 0600: memory holds secrets), synced,
// then renamed over NAME. An existing NAME is refused without force; a symbolic link or a
// non-regular file at NAME is always refused. Writes are positional, so callers leave holes
// (sparse files) by not writing. Destroying an uncommitted file removes the temporary file.
#pragma once

#include <llvm/ADT/ArrayRef.h>
#include <llvm/Support/Error.h>

#include <cstdint>
#include <memory>
#include <string>

namespace procsnap::analyze {

class StagedOutputFile final {
public:
  static llvm::Expected<std::unique_ptr<StagedOutputFile>> create(const std::string& path,
                                                                  bool force);
  ~StagedOutputFile();
  StagedOutputFile(const StagedOutputFile&) = delete;
  StagedOutputFile& operator=(const StagedOutputFile&) = delete;

  // Writes bytes at offset. A full disk is "no space left on device while writing 'PATH'".
  llvm::Error write(uint64_t offset, llvm::ArrayRef<uint8_t> bytes);
  // Sets the file's size (a hole up to it when larger than what was written).
  llvm::Error resize(uint64_t size);
  // Disk space the file uses now (st_blocks), to report how sparse it is.
  uint64_t allocatedBytes() const;
  // fsync, rename to the final name (refusing to replace a file that appeared meanwhile
  // unless force), fsync the directory.
  llvm::Error commit();

  const std::string& path() const { return path_; }

private:
  StagedOutputFile() = default;
  llvm::Error writeError(int err) const;

  std::string path_;
  std::string name_;
  std::string temp_name_;
  bool force_ = false;
  int dir_fd_ = -1;
  int fd_ = -1;
  bool committed_ = false;
};

} // namespace procsnap::analyze
