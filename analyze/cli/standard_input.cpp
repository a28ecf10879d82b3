#include "analyze/cli/standard_input.h"

#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Signals.h>

#include <cerrno>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace procsnap::analyze {

namespace {

// Copy buffer: large enough that a multi-GiB archive spools at disk speed.
constexpr size_t kSpoolBufferBytes = 1 << 20;

std::string& spooledPath() {
  static std::string path;
  return path;
}

void removeSpooledFile() {
  if (!spooledPath().empty())
    ::unlink(spooledPath().c_str());
}

llvm::Error errnoError(const char* what) {
  std::error_code ec(errno, std::generic_category());
  return llvm::createStringError(ec, "%s: %s", what, ec.message().c_str());
}

} // namespace

llvm::Expected<std::string> standardInputPath() {
  struct stat status {};
  if (::fstat(STDIN_FILENO, &status) != 0)
    return errnoError("cannot read standard input");
  if (S_ISREG(status.st_mode))
    return std::string("/proc/self/fd/0");
  if (!spooledPath().empty())
    return spooledPath();

  int fd = -1;
  llvm::SmallString<128> path;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile("procsnap-stdin", "psnap", fd, path))
    return llvm::createStringError(ec, "cannot spool standard input: %s", ec.message().c_str());
  spooledPath() = path.str().str();
  llvm::sys::RemoveFileOnSignal(path);
  std::atexit(removeSpooledFile);
  std::vector<char> buffer(kSpoolBufferBytes);
  for (;;) {
    ssize_t got = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      ::close(fd);
      return errnoError("cannot read standard input");
    }
    if (got == 0)
      break;
    for (ssize_t written = 0; written < got;) {
      ssize_t put = ::write(fd, buffer.data() + written, static_cast<size_t>(got - written));
      if (put < 0 && errno == EINTR)
        continue;
      if (put < 0) {
        ::close(fd);
        return errnoError("cannot spool standard input");
      }
      written += put;
    }
  }
  ::close(fd);
  return spooledPath();
}

} // namespace procsnap::analyze
