#include "capture/archive_output.h"

#include "capture/signal_guard.h"
#include "common/util/text_scan.h"

#include <cerrno>
#include <ctime>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap {
namespace {

std::string formatUtcCompact(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm utc {};
  ::gmtime_r(&t, &utc);
  char text[32];
  const size_t n = std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return std::string(text, n);
}

} // namespace

Result<std::unique_ptr<ArchiveOutput>> ArchiveOutput::create(const std::string& path, bool force) {
  auto file = OutputFile::create(path, force);
  if (!file)
    return std::move(file).takeError();
  std::unique_ptr<ArchiveOutput> output(new ArchiveOutput());
  output->file_ = std::move(*file);
  output->path_ = path;
  SignalGuard::setTemporaryPath(output->file_->temporaryPath().c_str());
  return output;
}

Result<std::unique_ptr<ArchiveOutput>> ArchiveOutput::standardOutput() {
  if (::isatty(STDOUT_FILENO))
    return Error::make(ErrorCode::InvalidArgument,
                       "refusing to write an archive to a terminal (redirect standard output)");
  struct stat st {};
  if (::fstat(STDOUT_FILENO, &st) != 0)
    return Error::make(ErrorCode::Io, "standard output is not open: " + errnoText(errno));
  std::unique_ptr<ArchiveOutput> output(new ArchiveOutput());
  output->path_.assign(1, '-'); // not = "-": g++ 12 -O2 warns falsely (-Wrestrict)
  return output;
}

ArchiveOutput::~ArchiveOutput() {
  // Then file_ removes the temporary file, if not committed.
  if (file_)
    SignalGuard::clearTemporaryPath();
}

int ArchiveOutput::fd() const {
  return file_ ? file_->fd() : STDOUT_FILENO;
}

Result<void> ArchiveOutput::commit() {
  if (!file_) {
    struct stat st {};
    if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && ::fsync(STDOUT_FILENO) != 0)
      return procsnap::describeWriteError(errno, "standard output");
    return success();
  }
  Result<void> committed = file_->commit();
  // Renamed or removed: either way the temporary name is gone.
  SignalGuard::clearTemporaryPath();
  return committed;
}

Error ArchiveOutput::describeWriteError(const Error& error) const {
  return file_ ? file_->describeWriteError(error)
               : procsnap::describeWriteError(error, "standard output");
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
