// The runner executable, embedded so that cpudiff stays one binary.
#include "engines/embed.h"
#include "engines/native/runner_host.h"

CPUDIFF_EMBED_FILE(NativeRunnerImage, CPUDIFF_RUNNER_PATH)
