/* cpudiff-qemu-jail: starts qemu-x86_64 in a box of its own.
 *
 * Why a box: QEMU user mode passes its guest's system calls to the host
 * kernel, and it refuses PR_SET_SECCOMP from the guest, so the runner's
 * seccomp filter does not exist under it (PLATFORM-NOTES "QEMU user mode").
 * The qemu engine refuses cases whose bytes hold a system-call instruction
 * (qemu_engine.cc), but a case can still jump into the runner's own
 * `syscall` with registers of its choosing. This program makes whatever
 * such a call could do harmless:
 *
 *   1. unshare(USER|NS|PID|NET|IPC|UTS): a user namespace (root inside is
 *      the caller's uid outside, with no capability over anything of the
 *      host), its own mounts, process ids, an empty network (not even lo is
 *      up), System V IPC and host name.
 *   2. fork: the child is pid 1 of the new pid namespace and forks qemu.
 *      qemu must not be pid 1 itself: the kernel drops signals that pid 1
 *      sends itself without a handler, so qemu's abort() on a failed
 *      assertion would not end it (measured: it hung until the wall-time
 *      limit). Pid 1 waits for qemu and passes its wait status up a pipe;
 *      the outer parent then ends the same way (same exit status, or killed
 *      by the same signal), so the host sees qemu's death as the jail's.
 *      Pid 1 has PR_SET_PDEATHSIG(SIGKILL): when the host kills the outer
 *      parent (wall-time limit), pid 1 dies, and with it the namespace.
 *   3. A new root: an empty tmpfs holding only read-only bind mounts of the
 *      files given with --ro (the qemu binary, its loader and libraries) and
 *      a read-only /proc of the new pid namespace (qemu opens the runner as
 *      /proc/self/fd/6 and reads /proc/self/maps). pivot_root into it,
 *      detach the old root, remount the tmpfs read-only: no host path is
 *      reachable and nothing in the box is writable.
 *   4. Every capability dropped (bounding, effective, permitted, inheritable,
 *      ambient) and SECBIT_NOROOT locked, so that exec as uid 0 inside the
 *      namespace does not give them back: qemu and its guest cannot mount,
 *      remount or unshare anything. PR_SET_NO_NEW_PRIVS.
 *   5. personality(ADDR_NO_RANDOMIZE): qemu's own libraries and heap go to
 *      fixed addresses near the top of the address space, clear of the
 *      runner's fixed mappings at 0x7ff0_1000_0000..0x7ff2_8000_0000 (with
 *      randomization they land anywhere in the top TiB, and a MAP_FIXED of
 *      the runner there would silently replace qemu's own code).
 *   6. Descriptors other than 0-6 closed (the host already passed only the
 *      channel, the shared memory and the runner executable); resource
 *      limits come from the host (no core files, bounded address space).
 *
 *   7. With --tmp, a small writable tmpfs (256 KiB, no exec) at /tmp of the
 *      box, for Valgrind's start-up files (its fake /proc/self/cmdline and
 *      auxv); it lives and dies with the box's mount namespace.
 *
 * Usage: cpudiff-qemu-jail [--ro PATH]... [--tmp] -- QEMU [ARGS...]
 * Exit status 125 with a message on stderr when the box cannot be built.
 *
 * Plain C with libc, linked statically: it is executed from a memfd before
 * any of this, so it must not need a loader either. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define kMaxRo 256
#define kFailStatus 125

static void die(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > (int)sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
  if (n < 0) n = 0;
  int e = errno;
  char line[700];
  int m = snprintf(line, sizeof(line), "cpudiff-qemu-jail: %.*s: %s\n", n, buf, strerror(e));
  if (m > 0) (void)!write(2, line, (size_t)m);
  _exit(kFailStatus);
}

static void write_file(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open %s", path);
  size_t n = strlen(text);
  if (write(fd, text, n) != (ssize_t)n) die("write %s", path);
  close(fd);
}

/* mkdir -p of `path` (absolute, below the new root's directory). */
static void make_dirs(char* path) {
  for (char* p = path + 1; *p; ++p) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir %s", path);
    *p = '/';
  }
  if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir %s", path);
}

/* Read-only bind mount of host `src` at `root`+`src`. */
static void bind_ro(const char* root, const char* src) {
  struct stat st;
  if (stat(src, &st) != 0) die("stat %s", src);
  char dst[4096];
  if (snprintf(dst, sizeof(dst), "%s%s", root, src) >= (int)sizeof(dst)) {
    errno = ENAMETOOLONG;
    die("path %s", src);
  }
  if (S_ISDIR(st.st_mode)) {
    make_dirs(dst);
  } else {
    char* slash = strrchr(dst, '/');
    *slash = 0;
    make_dirs(dst);
    *slash = '/';
    int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0 && errno != EEXIST) die("create %s", dst);
    if (fd >= 0) close(fd);
  }
  /* The source path may pass through symlinks (/lib -> usr/lib): mount
   * follows them and binds the file itself. */
  if (mount(src, dst, NULL, MS_BIND, NULL) != 0) die("bind %s", src);
  if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
    die("remount read-only %s", dst);
  }
}

static void drop_capabilities(void) {
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die("PR_CAPBSET_DROP");
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    die("PR_CAP_AMBIENT_CLEAR_ALL");
  }
  /* Locked: exec as uid 0 gives no capabilities back, and this cannot be
   * undone. Needs CAP_SETPCAP, so before capset. */
  int bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
             SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED;
  if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) die("PR_SET_SECUREBITS");
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof(data));
  if (syscall(SYS_capset, &hdr, data) != 0) die("capset");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("PR_SET_NO_NEW_PRIVS");
}

/* Ends this process the way `status` says the child ended. */
static void mirror(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
    _exit(128 + sig);
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : kFailStatus);
}

int main(int argc, char** argv) {
  const char* ro[kMaxRo];
  int nro = 0;
  int tmp = 0;
  int i = 1;
  for (; i < argc; ++i) {
    if (strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    if (strcmp(argv[i], "--tmp") == 0) {
      tmp = 1;
      continue;
    }
    if (strcmp(argv[i], "--ro") == 0 && i + 1 < argc && nro < kMaxRo) {
      ro[nro++] = argv[++i];
      continue;
    }
    errno = EINVAL;
    die("bad argument %s", argv[i]);
  }
  if (i >= argc) {
    errno = EINVAL;
    die("usage: cpudiff-qemu-jail [--ro PATH]... [--tmp] -- QEMU [ARGS...]");
  }
  char** qemu_argv = argv + i;

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* qemu's own messages (a failed assertion before it aborts, "uncaught
   * target signal") are expected events, recorded as the case's `crash`
   * outcome with the signal; they must not interleave with cpudiff's output. */
  int quiet = open("/dev/null", O_WRONLY | O_CLOEXEC);
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
              CLONE_NEWUTS) != 0) {
    die("unshare");
  }
  /* One id mapped: root inside is the caller outside (the only mapping a
   * process may write for itself). */
  char map[64];
  write_file("/proc/self/setgroups", "deny");
  snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
  write_file("/proc/self/uid_map", map);
  snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
  write_file("/proc/self/gid_map", map);

  /* `alive`: pid 1 learns of the parent's death through it as well as
   * through PDEATHSIG (which cannot report a death before it was set).
   * `report`: pid 1 sends qemu's wait status up. */
  int alive[2], report[2];
  if (pipe2(alive, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child > 0) {
    /* Hold nothing of the protocol: the host must see EOF when qemu dies. */
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != alive[1] && fd != report[0]) close(fd);
    }
    int qemu_status = 0;
    ssize_t got;
    do {
      got = read(report[0], &qemu_status, sizeof(qemu_status));
    } while (got < 0 && errno == EINTR);
    int status;
    while (waitpid(child, &status, 0) < 0) {
      if (errno != EINTR) die("waitpid");
    }
    mirror(got == (ssize_t)sizeof(qemu_status) ? qemu_status : status);
  }

  close(alive[1]);
  close(report[0]);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die("PR_SET_PDEATHSIG");
  struct pollfd p = {alive[0], POLLIN, 0};
  if (poll(&p, 1, 0) != 0) _exit(kFailStatus); /* parent already gone */
  close(alive[0]);

  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("make / private");
  /* Any existing directory serves as the mount point of the new root; the
   * mount is private to this namespace. */
  const char* root = "/tmp";
  struct stat st;
  if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) root = "/mnt";
  if (mount("cpudiff-qemu", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") != 0) {
    die("mount tmpfs on %s", root);
  }
  for (int k = 0; k < nro; ++k) bind_ro(root, ro[k]);
  char proc[256];
  snprintf(proc, sizeof(proc), "%s/proc", root);
  make_dirs(proc);
  if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die("mount proc");
  if (mount(NULL, proc, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            NULL) != 0) {
    die("remount proc read-only");
  }
  if (tmp) {
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/tmp", root);
    make_dirs(dir);
    if (mount("cpudiff-tmp", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=256k,mode=1777") != 0) {
      die("mount tmpfs on %s", dir);
    }
  }
  if (chdir(root) != 0) die("chdir %s", root);
  /* pivot_root(".", ".") stacks the old root on the new one; detaching it
   * leaves the new root alone. */
  if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) die("detach old root");
  if (chdir("/") != 0) die("chdir /");
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
    die("remount / read-only");
  }
  sethostname("cpudiff-qemu", 12);

  pid_t qemu = fork();
  if (qemu < 0) die("fork");
  if (qemu == 0) {
    if (personality(ADDR_NO_RANDOMIZE) < 0) die("personality");
    drop_capabilities();
    if (quiet >= 0) {
      dup2(quiet, 1); /* glib prints "Bail out!" on stdout */
      dup2(quiet, 2);
    }
    syscall(SYS_close_range, 7, ~0u, 0);
    /* The environment the host gave the jail (empty for qemu; Valgrind
     * needs VALGRIND_LAUNCHER). */
    execve(qemu_argv[0], qemu_argv, environ);
    die("execve %s", qemu_argv[0]);
  }
  /* Pid 1: keep only the report pipe, and no capabilities either. */
  for (int fd = 0; fd < 1024; ++fd) {
    if (fd != report[1] && fd != 2) close(fd);
  }
  drop_capabilities();
  int status;
  while (waitpid(qemu, &status, 0) < 0) {
    if (errno != EINTR) die("waitpid qemu");
  }
  (void)!write(report[1], &status, sizeof(status));
  _exit(0);
  return kFailStatus;
}
