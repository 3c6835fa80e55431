#include "engines/embed.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace cpudiff
