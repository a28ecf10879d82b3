#include "common/util/output_file.h"

#include "common/util/text_scan.h"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap {
namespace {

// Temporary names are unique per attempt and O_EXCL turns a clash into EEXIST, so a few fresh
// random suffixes are enough.
constexpr int kTemporaryNameAttempts = 16;
// Process memory holds secrets: never readable by others, whatever the umask.
constexpr mode_t kOutputMode = 0600;

ErrorCode errorCodeFor(int err) {
  if (err == ENOSPC || err == EDQUOT)
    return ErrorCode::NoSpace;
  if (err == EACCES || err == EPERM || err == EROFS)
    return ErrorCode::PermissionDenied;
  if (err == ENOENT || err == ENOTDIR)
    return ErrorCode::NotFound;
  return ErrorCode::Io;
}

// "WHAT: no such file or directory".
Error errnoError(int err, const std::string& what) {
  return Error::make(errorCodeFor(err), what + ": " + errnoText(err));
}

std::string lowercaseFirst(std::string text) {
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z')
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  return text;
}

} // namespace

Result<std::unique_ptr<OutputFile>> OutputFile::create(const std::string& path, bool force) {
  if (path.empty())
    return Error::make(ErrorCode::InvalidArgument, "empty output file name");
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..")
    return Error::make(ErrorCode::InvalidArgument, "output is a directory: " + path);

  std::unique_ptr<OutputFile> file(new OutputFile());
  file->path_ = path;
  file->name_ = name;
  file->force_ = force;
  file->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (file->dir_fd_ < 0)
    return errnoError(errno, "cannot open output directory " + dir);

  // Checked now, so a bad destination fails before any work; the rename checks again
  // (RENAME_NOREPLACE) in case something appears meanwhile.
  struct stat st {};
  if (::fstatat(file->dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return Error::make(ErrorCode::InvalidArgument,
                         "refusing to write through a symbolic link: " + path);
    if (!S_ISREG(st.st_mode))
      return Error::make(ErrorCode::InvalidArgument,
                         "refusing to replace " + path + ": not a regular file");
    if (!force)
      return Error::make(ErrorCode::InvalidArgument,
                         "output file exists: " + path + " (use --force to overwrite)");
  } else if (errno != ENOENT) {
    return errnoError(errno, "cannot check output file " + path);
  }

  std::random_device random;
  for (int attempt = 0; attempt < kTemporaryNameAttempts; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "%d.%08x", static_cast<int>(::getpid()),
                  static_cast<unsigned>(random()));
    std::string temp_name = "." + name + ".tmp." + suffix;
    const int fd = ::openat(file->dir_fd_, temp_name.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kOutputMode);
    if (fd < 0) {
      if (errno == EEXIST)
        continue;
      return errnoError(errno, "cannot create a file in " + dir);
    }
    file->fd_ = fd;
    file->temp_name_ = temp_name;
    file->temp_path_ = (dir == "/" ? "" : dir) + "/" + temp_name;
    if (::fchmod(fd, kOutputMode) != 0) // the umask may have cleared bits; never more than 0600
      return errnoError(errno, "cannot set the mode of " + file->temp_path_);
    return file;
  }
  return Error::make(ErrorCode::Io, "cannot find a free temporary file name in " + dir);
}

OutputFile::~OutputFile() {
  discard();
  if (fd_ >= 0)
    ::close(fd_);
  if (dir_fd_ >= 0)
    ::close(dir_fd_);
}

void OutputFile::discard() {
  if (committed_ || temp_name_.empty())
    return;
  // Deliberately ignored: nothing more can be done when the unlink fails.
  (void)::unlinkat(dir_fd_, temp_name_.c_str(), 0);
  temp_name_.clear();
}

Result<void> OutputFile::write(uint64_t offset, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (written < 0 && errno == EINTR)
      continue;
    if (written < 0)
      return procsnap::describeWriteError(errno, path_);
    if (written == 0) // pwrite makes no progress only when the device is full
      return procsnap::describeWriteError(ENOSPC, path_);
    bytes = bytes.subspan(static_cast<size_t>(written));
    offset += static_cast<uint64_t>(written);
  }
  return success();
}

Result<void> OutputFile::resize(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    if (err == EFBIG)
      return Error::make(ErrorCode::Io, path_ + " would be larger than the file system allows");
    return procsnap::describeWriteError(err, path_);
  }
  return success();
}

uint64_t OutputFile::allocatedBytes() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    return 0; // only a report figure
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

Result<void> OutputFile::commit() {
  if (temp_name_.empty())
    return Error::make(ErrorCode::Generic, "output file already discarded");
  // Closed here, not later: a network file system may report a failed write only at close.
  int err = ::fsync(fd_) == 0 ? 0 : errno;
  if (::close(fd_) != 0 && err == 0)
    err = errno;
  fd_ = -1;
  if (err != 0) {
    Error error = procsnap::describeWriteError(err, path_);
    discard();
    return error;
  }
  int rc;
  if (force_) {
    // The destination was checked to be absent or a regular file; rename() replaces the
    // directory entry itself and never follows a symlink put there meanwhile.
    rc = ::renameat(dir_fd_, temp_name_.c_str(), dir_fd_, name_.c_str());
  } else {
    rc = ::renameat2(dir_fd_, temp_name_.c_str(), dir_fd_, name_.c_str(), RENAME_NOREPLACE);
    if (rc != 0 && errno == EINVAL) {
      // A file system without RENAME_NOREPLACE: link() also refuses to replace.
      rc = ::linkat(dir_fd_, temp_name_.c_str(), dir_fd_, name_.c_str(), 0);
      if (rc == 0)
        (void)::unlinkat(dir_fd_, temp_name_.c_str(), 0); // the name is in place; best effort
    }
  }
  if (rc != 0) {
    const int err = errno;
    discard();
    if (err == EEXIST)
      return Error::make(ErrorCode::InvalidArgument,
                         "output file exists: " + path_ + " (use --force to overwrite)");
    return errnoError(err, "cannot rename the output to " + path_);
  }
  committed_ = true;
  temp_name_.clear();
  if (::fsync(dir_fd_) != 0)
    return errnoError(errno, "cannot sync the directory of " + path_);
  return success();
}

Error OutputFile::describeWriteError(const Error& error) const {
  return procsnap::describeWriteError(error, path_);
}

Error describeWriteError(const Error& error, const std::string& target) {
  if (error.code == ErrorCode::NoSpace)
    return Error::make(ErrorCode::NoSpace, "no space left on device while writing " + target);
  return Error::make(error.code, "cannot write " + target + ": " + lowercaseFirst(error.message));
}

Error describeWriteError(int err, const std::string& target) {
  return describeWriteError(Error::make(errorCodeFor(err), errnoText(err)), target);
}

} // namespace procsnap
