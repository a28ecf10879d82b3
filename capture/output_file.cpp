#include "capture/output_file.h"

#include "capture/signal_guard.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap {
namespace {

// Temporary names are unique per attempt; O_EXCL makes a clash an error, so a few retries
// with fresh random suffixes are enough.
constexpr int kTemporaryNameAttempts = 16;

Error errnoError(int err, const std::string& what) {
  ErrorCode code = ErrorCode::Io;
  if (err == ENOSPC || err == EDQUOT)
    code = ErrorCode::NoSpace;
  else if (err == EACCES || err == EPERM || err == EROFS)
    code = ErrorCode::PermissionDenied;
  else if (err == ENOENT || err == ENOTDIR)
    code = ErrorCode::NotFound;
  return Error::make(code, what + ": " + std::strerror(err));
}

std::string lowercaseFirst(std::string text) {
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z')
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  return text;
}

Error errnoErrorLower(int err, const std::string& what) {
  Error error = errnoError(err, what);
  // strerror starts with a capital ("No such file"); messages here are lowercase.
  const size_t colon = error.message.rfind(": ");
  if (colon != std::string::npos)
    error.message =
        error.message.substr(0, colon + 2) + lowercaseFirst(error.message.substr(colon + 2));
  return error;
}

std::string formatUtcCompact(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm utc {};
  ::gmtime_r(&t, &utc);
  char text[32];
  const size_t n = std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return std::string(text, n);
}

} // namespace

Result<std::unique_ptr<OutputFile>> OutputFile::create(const std::string& path, bool force) {
  if (path.empty())
    return Error::make(ErrorCode::InvalidArgument, "empty output file name");
  if (path.back() == '/')
    return Error::make(ErrorCode::InvalidArgument, "output is a directory: " + path);
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name == "." || name == "..")
    return Error::make(ErrorCode::InvalidArgument, "output is a directory: " + path);

  std::unique_ptr<OutputFile> file(new OutputFile());
  file->path_ = path;
  file->name_ = name;
  file->force_ = force;
  file->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (file->dir_fd_ < 0)
    return errnoErrorLower(errno, "cannot open output directory " + dir);

  // Check the destination now, so a bad one fails before the target is frozen. The rename
  // checks again (RENAME_NOREPLACE) in case something appears meanwhile.
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
    return errnoErrorLower(errno, "cannot check output file " + path);
  }

  std::random_device random;
  for (int attempt = 0; attempt < kTemporaryNameAttempts; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "%d.%08x", static_cast<int>(::getpid()),
                  static_cast<unsigned>(random()));
    std::string temp_name = "." + name + ".tmp." + suffix;
    // 0600: process memory holds secrets.
    const int fd = ::openat(file->dir_fd_, temp_name.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST)
        continue;
      return errnoErrorLower(errno, "cannot create a file in " + dir);
    }
    file->fd_ = fd;
    file->temp_name_ = temp_name;
    file->temp_path_ = (dir == "/" ? "" : dir) + "/" + temp_name;
    SignalGuard::setTemporaryPath(file->temp_path_.c_str());
    return file;
  }
  return Error::make(ErrorCode::Io, "cannot find a free temporary file name in " + dir);
}

Result<std::unique_ptr<OutputFile>> OutputFile::standardOutput() {
  if (::isatty(STDOUT_FILENO))
    return Error::make(ErrorCode::InvalidArgument,
                       "refusing to write an archive to a terminal (redirect standard output)");
  struct stat st {};
  if (::fstat(STDOUT_FILENO, &st) != 0)
    return errnoErrorLower(errno, "standard output is not open");
  std::unique_ptr<OutputFile> file(new OutputFile());
  file->fd_ = STDOUT_FILENO;
  file->to_stdout_ = true;
  file->path_.assign(1, '-'); // not = "-": g++ 12 -O2 warns falsely (-Wrestrict)
  return file;
}

OutputFile::~OutputFile() {
  discard();
  if (fd_ >= 0 && !to_stdout_)
    ::close(fd_);
  if (dir_fd_ >= 0)
    ::close(dir_fd_);
}

void OutputFile::discard() {
  if (to_stdout_ || committed_ || temp_name_.empty())
    return;
  SignalGuard::clearTemporaryPath();
  // Deliberately ignored: nothing more can be done when the unlink fails.
  (void)::unlinkat(dir_fd_, temp_name_.c_str(), 0);
  temp_name_.clear();
}

Result<void> OutputFile::commit() {
  if (to_stdout_) {
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && ::fsync(fd_) != 0)
      return describeWriteError(errnoError(errno, "fsync"));
    committed_ = true;
    return success();
  }
  if (temp_name_.empty())
    return Error::make(ErrorCode::Generic, "output file already discarded");
  if (::fsync(fd_) != 0) {
    Error error = describeWriteError(errnoError(errno, "fsync"));
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
    return errnoErrorLower(err, "cannot rename the archive to " + path_);
  }
  committed_ = true;
  SignalGuard::clearTemporaryPath();
  temp_name_.clear();
  if (::fsync(dir_fd_) != 0)
    return errnoErrorLower(errno, "cannot sync the directory of " + path_);
  return success();
}

Error OutputFile::describeWriteError(const Error& error) const {
  const std::string target = to_stdout_ ? std::string("standard output") : path_;
  if (error.code == ErrorCode::NoSpace)
    return Error::make(ErrorCode::NoSpace, "no space left on device while writing " + target);
  return Error::make(error.code, "cannot write " + target + ": " + lowercaseFirst(error.message));
}

std::string defaultOutputName(std::string_view comm, pid_t pid, int64_t unix_seconds) {
  std::string name;
  for (char c : comm) {
    const unsigned char u = static_cast<unsigned char>(c);
    name += (c == '/' || u < 0x20 || u == 0x7f || c == ' ') ? '_' : c;
  }
  if (name.empty())
    name = "process";
  if (name.front() == '.')
    name.front() = '_'; // no hidden files
  return name + "." + std::to_string(pid) + "." + formatUtcCompact(unix_seconds) + ".psnap";
}

} // namespace procsnap
