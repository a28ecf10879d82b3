#include "tests/support/run_command.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace procsnap::test {

namespace {

void closeIfOpen(int& fd) {
  if (fd >= 0)
    close(fd);
  fd = -1;
}

// Reads what is available from fd into out; closes fd at end of file or error.
void drain(int& fd, std::string& out, bool& truncated) {
  char buffer[65536];
  ssize_t n = read(fd, buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    closeIfOpen(fd);
    return;
  }
  size_t room = kMaxCommandOutputBytes - std::min(out.size(), kMaxCommandOutputBytes);
  if (static_cast<size_t>(n) > room)
    truncated = true;
  out.append(buffer, std::min(room, static_cast<size_t>(n)));
}

} // namespace

CommandResult runCommand(const std::vector<std::string>& argv, int timeout_seconds) {
  CommandResult result;
  if (argv.empty()) {
    result.err = "empty command";
    return result;
  }
  std::vector<std::string> argv_copy = argv;
  std::vector<char*> argv_pointers;
  for (std::string& arg : argv_copy)
    argv_pointers.push_back(arg.data());
  argv_pointers.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    result.err = std::string("cannot create a pipe: ") + std::strerror(errno);
    return result;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.err = std::string("cannot create a pipe: ") + std::strerror(errno);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return result;
  }
  pid_t pid = fork();
  if (pid < 0) {
    result.err = std::string("cannot fork: ") + std::strerror(errno);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      close(fd);
    return result;
  }
  if (pid == 0) {
    // Child: its own process group, so a timeout also kills what it started.
    setpgid(0, 0);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
        dup2(err_pipe[1], STDERR_FILENO) < 0)
      _exit(127);
    execvp(argv_pointers[0], argv_pointers.data());
    const char message[] = "cannot execute the command\n";
    ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1); // best effort
    (void)ignored;
    _exit(127);
  }
  setpgid(pid, pid); // also from here, so the group exists before any kill below
  close(out_pipe[1]);
  close(err_pipe[1]);
  int out_fd = out_pipe[0], err_fd = err_pipe[0];

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (out_fd >= 0 || err_fd >= 0) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd watched[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}}; // negative fds are ignored
    int ready = poll(watched, 2, static_cast<int>(remaining.count()));
    if (ready < 0 && errno != EINTR)
      break;
    if (ready <= 0)
      continue;
    if (watched[0].revents != 0)
      drain(out_fd, result.out, result.truncated);
    if (watched[1].revents != 0)
      drain(err_fd, result.err, result.truncated);
  }
  closeIfOpen(out_fd);
  closeIfOpen(err_fd);

  // Output closed does not mean exited: keep to the deadline for the exit too.
  auto killGroup = [pid] {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
  };
  if (result.timed_out)
    killGroup();
  int status = 0;
  bool reaped = false;
  for (;;) {
    pid_t waited = waitpid(pid, &status, result.timed_out ? 0 : WNOHANG);
    if (waited == pid) {
      reaped = true;
      break;
    }
    if (waited < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      result.timed_out = true;
      killGroup();
      continue;
    }
    usleep(1000);
  }
  if (result.timed_out) {
    result.exit_code = -1;
    result.err += "command timed out after " + std::to_string(timeout_seconds) + " s";
    return result;
  }
  if (!reaped) {
    result.err += std::string("cannot wait for the command: ") + std::strerror(errno);
    return result;
  }
  if (WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    result.exit_code = 128 + WTERMSIG(status);
  return result;
}

pid_t spawnCommand(const std::vector<std::string>& args) {
  std::vector<std::string> copies = args;
  std::vector<char*> argv;
  for (std::string& arg : copies)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  if (argv[0] == nullptr ||
      posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0)
    pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int waitCommand(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0)
      return -1;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

} // namespace procsnap::test
