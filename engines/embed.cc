#include "engines/embed.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace cpudiff {

int SealedMemfd(const char* name, std::span<const uint8_t> image, std::string* error) {
  int f = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (f < 0) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return -1;
  }
  size_t done = 0;
  while (done < image.size()) {
    ssize_t w = write(f, image.data() + done, image.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      *error = std::string("write(") + name + "): " + std::strerror(errno);
      close(f);
      return -1;
    }
    done += static_cast<size_t>(w);
  }
  fcntl(f, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  return f;
}

std::string FindInPath(const std::string& name) {
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    // An empty entry means the current directory.
    std::string full = (end > start ? p.substr(start, end - start) : std::string(".")) + "/" + name;
    if (access(full.c_str(), X_OK) == 0) return full;
    start = end + 1;
  }
  return {};
}

}  // namespace cpudiff
