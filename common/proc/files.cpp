#include "common/proc/files.h"

#include "common/util/text_scan.h"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap {

namespace {

// Read granularity: big enough that maps/smaps of a typical process take one or two reads.
constexpr size_t kReadChunk = 64 * 1024;

ErrorCode errorCodeFor(int error_number) {
  switch (error_number) {
  case ENOENT:
    return ErrorCode::NotFound;
  case ESRCH:
    return ErrorCode::ProcessGone;
  case EACCES:
  case EPERM:
    return ErrorCode::PermissionDenied;
  default:
    return ErrorCode::Io;
  }
}

Error errnoError(int error_number, const std::string& action, const std::string& path) {
  return Error::make(errorCodeFor(error_number),
                     "cannot " + action + " " + path + ": " + errnoText(error_number));
}

class FileDescriptor final {
public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0)
      ::close(fd_); // read-only: a failing close loses nothing
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

private:
  int fd_;
};

// Reads path into a container of char-sized elements.
template <typename Buffer> Result<Buffer> readWhole(const std::string& path, size_t max_size) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0)
    return errnoError(errno, "open", path);
  Buffer buffer;
  size_t used = 0;
  for (;;) {
    // One byte past the limit tells a file of exactly max_size from a larger one.
    if (used > max_size)
      return Error::make(ErrorCode::Unsupported, path + " is larger than the limit of " +
                                                     std::to_string(max_size) + " bytes");
    size_t want = std::min(kReadChunk, max_size + 1 - used);
    buffer.resize(used + want);
    ssize_t got = ::read(fd.get(), buffer.data() + used, want);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return errnoError(errno, "read", path);
    }
    if (got == 0)
      break;
    used += static_cast<size_t>(got);
  }
  buffer.resize(used);
  return buffer;
}

// Whether /proc/PID still exists, to tell a vanished process from a missing file.
bool processExists(pid_t pid) {
  struct stat info {};
  return ::stat(procPath(pid, "").c_str(), &info) == 0;
}

template <typename Entry, typename Parser>
Result<std::vector<Entry>> readStable(pid_t pid, std::string_view name, Parser parse) {
  const std::string path = procPath(pid, name);
  Error last_error;
  for (int attempt = 0; attempt <= kMaxTornReadRetries; ++attempt) {
    auto text = readProcFile(path);
    if (!text.ok()) {
      Error error = std::move(text).takeError();
      if (error.code == ErrorCode::NotFound && !processExists(pid))
        return Error::make(ErrorCode::ProcessGone, "process " + std::to_string(pid) + " is gone");
      return error;
    }
    auto entries = parse(*text);
    if (entries.ok() || entries.error().code != ErrorCode::TornRead)
      return entries;
    last_error = std::move(entries).takeError();
  }
  return Error::make(ErrorCode::TornRead, path + " changed during each of " +
                                              std::to_string(kMaxTornReadRetries + 1) +
                                              " reads: " + last_error.message);
}

} // namespace

Result<std::string> readProcFile(const std::string& path, size_t max_size) {
  return readWhole<std::string>(path, max_size);
}

Result<std::vector<std::byte>> readProcFileBytes(const std::string& path, size_t max_size) {
  return readWhole<std::vector<std::byte>>(path, max_size);
}

std::string procPath(pid_t pid, std::string_view name) {
  std::string path = "/proc/" + std::to_string(pid) + "/";
  path += name;
  return path;
}

Result<std::vector<MapsEntry>> readMapsStable(pid_t pid) {
  return readStable<MapsEntry>(pid, "maps", [](std::string_view text) { return parseMaps(text); });
}

Result<std::vector<SmapsEntry>> readSmapsStable(pid_t pid) {
  return readStable<SmapsEntry>(pid, "smaps",
                                [](std::string_view text) { return parseSmaps(text); });
}

} // namespace procsnap
