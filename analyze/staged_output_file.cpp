#include "analyze/staged_output_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap::analyze {

namespace {

// Temporary names are unique per attempt and O_EXCL turns a clash into EEXIST, so a few fresh
// random suffixes are enough.
constexpr int kTemporaryNameAttempts = 16;
// Memory holds secrets: never readable by others, whatever the umask.
constexpr mode_t kOutputMode = 0600;

// "no such file or directory": strerror's text, lowercase like every message here.
std::string errnoText(int err) {
  std::string text = std::strerror(err);
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z')
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  return text;
}

llvm::Error errnoError(int err, const std::string& what) {
  return llvm::createStringError(std::error_code(err, std::generic_category()),
                                 what + ": " + errnoText(err));
}

llvm::Error plainError(const std::string& message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

} // namespace

llvm::Expected<std::unique_ptr<StagedOutputFile>> StagedOutputFile::create(const std::string& path,
                                                                           bool force) {
  if (path.empty())
    return plainError("empty output file name");
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..")
    return plainError("'" + path + "' is a directory");

  std::unique_ptr<StagedOutputFile> file(new StagedOutputFile());
  file->path_ = path;
  file->name_ = name;
  file->force_ = force;
  file->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (file->dir_fd_ < 0)
    return errnoError(errno, "cannot open the directory of '" + path + "'");

  // Checked now so a bad destination fails before any work; the rename checks again.
  struct stat st {};
  if (::fstatat(file->dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return plainError("refusing to write through the symbolic link '" + path + "'");
    if (!S_ISREG(st.st_mode))
      return plainError("refusing to replace '" + path + "': not a regular file");
    if (!force)
      return plainError("'" + path + "' exists; use --force to overwrite it");
  } else if (errno != ENOENT) {
    return errnoError(errno, "cannot check '" + path + "'");
  }

  std::random_device random;
  for (int attempt = 0; attempt < kTemporaryNameAttempts; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "%d.%08x", static_cast<int>(::getpid()),
                  static_cast<unsigned>(random()));
    std::string temp_name = "." + name + ".tmp." + suffix;
    int fd = ::openat(file->dir_fd_, temp_name.c_str(),
                      O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kOutputMode);
    if (fd < 0) {
      if (errno == EEXIST)
        continue;
      return errnoError(errno, "cannot create a file in '" + dir + "'");
    }
    file->fd_ = fd;
    file->temp_name_ = temp_name;
    if (::fchmod(fd, kOutputMode) != 0) // the umask may have cleared bits; never more than 0600
      return errnoError(errno, "cannot set the mode of '" + path + "'");
    return file;
  }
  return plainError("cannot find a free temporary file name in '" + dir + "'");
}

StagedOutputFile::~StagedOutputFile() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!committed_ && !temp_name_.empty())
    (void)::unlinkat(dir_fd_, temp_name_.c_str(), 0); // best effort: nothing more to do
  if (dir_fd_ >= 0)
    ::close(dir_fd_);
}

llvm::Error StagedOutputFile::writeError(int err) const {
  if (err == ENOSPC || err == EDQUOT)
    return llvm::createStringError(std::error_code(err, std::generic_category()),
                                   "no space left on device while writing '" + path_ + "'");
  return errnoError(err, "cannot write '" + path_ + "'");
}

llvm::Error StagedOutputFile::write(uint64_t offset, llvm::ArrayRef<uint8_t> bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (written < 0 && errno == EINTR)
      continue;
    if (written < 0)
      return writeError(errno);
    if (written == 0)
      return writeError(ENOSPC); // pwrite makes no progress only when the device is full
    bytes = bytes.drop_front(static_cast<size_t>(written));
    offset += static_cast<uint64_t>(written);
  }
  return llvm::Error::success();
}

llvm::Error StagedOutputFile::resize(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    return errno == EFBIG
               ? plainError("'" + path_ + "' would be larger than the file system allows")
               : writeError(errno);
  return llvm::Error::success();
}

uint64_t StagedOutputFile::allocatedBytes() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    return 0; // only a report figure
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

llvm::Error StagedOutputFile::commit() {
  if (::fsync(fd_) != 0)
    return writeError(errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return writeError(errno);
  }
  fd_ = -1;
  int rc;
  if (force_) {
    // rename() replaces the directory entry and never follows a symlink put there meanwhile.
    rc = ::renameat(dir_fd_, temp_name_.c_str(), dir_fd_, name_.c_str());
  } else {
    rc = ::renameat2(dir_fd_, temp_name_.c_str(), dir_fd_, name_.c_str(), RENAME_NOREPLACE);
    if (rc != 0 && errno == EINVAL) {
      // A file system without RENAME_NOREPLACE: link() refuses to replace as well.
      rc = ::linkat(dir_fd_, temp_name_.c_str(), dir_fd_, name_.c_str(), 0);
      if (rc == 0)
        (void)::unlinkat(dir_fd_, temp_name_.c_str(), 0); // the name is in place; best effort
    }
  }
  if (rc != 0) {
    int err = errno;
    if (err == EEXIST)
      return plainError("'" + path_ + "' exists; use --force to overwrite it");
    return errnoError(err, "cannot rename the output to '" + path_ + "'");
  }
  committed_ = true;
  if (::fsync(dir_fd_) != 0)
    return errnoError(errno, "cannot sync the directory of '" + path_ + "'");
  return llvm::Error::success();
}

} // namespace procsnap::analyze
