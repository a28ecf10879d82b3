#include "analyze/output/staged_output.h"

#include "analyze/model/snapshot.h"

#include <llvm/Support/Signals.h>

#include <csignal>
#include <pthread.h>

namespace procsnap::analyze {

llvm::Expected<std::unique_ptr<OutputFile>> createStagedOutput(const std::string& path,
                                                               bool force) {
  // A signal between the file's creation and its registration would leave it behind: the
  // signals wait until both are done.
  sigset_t blocked, previous;
  sigemptyset(&blocked);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP})
    sigaddset(&blocked, signal_number);
  ::pthread_sigmask(SIG_BLOCK, &blocked, &previous);
  Result<std::unique_ptr<OutputFile>> file = OutputFile::create(path, force);
  // Left registered after the rename: the handler then finds no such file, and each name is
  // random, so it never removes anything else.
  if (file)
    llvm::sys::RemoveFileOnSignal((*file)->temporaryPath());
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (!file)
    return toLlvmError(file.error());
  return std::move(*file);
}

} // namespace procsnap::analyze
