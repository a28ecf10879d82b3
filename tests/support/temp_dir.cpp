#include "tests/support/temp_dir.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

namespace procsnap::test {

Result<TempDir> TempDir::create(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  if (base == nullptr || base[0] == '\0')
    base = "/tmp";
  std::string pattern = std::string(base) + "/" + std::string(prefix) + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr)
    return Error::make(ErrorCode::Io,
                       "cannot create a directory like " + pattern + ": " + std::strerror(errno));
  return TempDir(std::move(pattern));
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, std::string())) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, std::string());
  }
  return *this;
}

TempDir::~TempDir() {
  remove();
}

std::string TempDir::file(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

void TempDir::remove() {
  if (path_.empty())
    return;
  std::error_code ignored; // a test must not fail because cleanup did
  std::filesystem::remove_all(path_, ignored);
  path_.clear();
}

} // namespace procsnap::test
