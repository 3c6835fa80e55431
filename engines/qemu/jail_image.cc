// The jail executable (jail.c), embedded so that cpudiff stays one binary.
#include "engines/embed.h"
#include "engines/qemu/qemu_engine.h"

CPUDIFF_EMBED_FILE(QemuJailImage, CPUDIFF_QEMU_JAIL_PATH)
