/*
 * kiln-vmm-launch: starts one QEMU in its jail (vmm/jail.ts, docs/hardening.md), with system
 * calls instead of a chain of tools (bash, prlimit, ip netns exec, perl, unshare, sh + mount,
 * setpriv) that each exec'd the next: ~45-50 ms of every sandbox create, now ~1.5 ms.
 *
 *   kiln-vmm-launch [OPTION VALUE]... -- COMMAND [ARG]...
 *
 * kilnd (root) runs it; every value is an argument, never read by a shell. In this order:
 *   1. close every fd above 2 (nothing kilnd's parent leaked reaches QEMU);
 *   2. --cgroup-procs FILE (repeatable)  join that cgroup ("0" into its cgroup.procs);
 *   3. --fsize BYTES, --nofile N         RLIMIT_FSIZE / RLIMIT_NOFILE, soft = hard;
 *   4. --netns NAME                      enter /run/netns/NAME;
 *   5. --tap IFNAME                      /dev/net/tun + TUNSETIFF (IFF_TAP | IFF_NO_PI |
 *                                        IFF_VNET_HDR) on that persistent TAP → fd 3;
 *      --kvm PATH                        PATH (/dev/kvm) → fd 4; both without close-on-exec,
 *                                        opened inside the netns (a tun file attaches to the
 *                                        TAP of the namespace it was opened in) and before the
 *                                        jail hides the host's /dev;
 *   6. without --root: exec COMMAND in place. With --root DIR --uid N --gid N [--ro PATH]...
 *      [--rw PATH]...: new mount + PID namespace, fork; the child (pid 1 there, killed if this
 *      process dies) builds the jail on DIR — a 4 MiB tmpfs root holding /usr (bind, ro), the
 *      host's bin/lib… symlinks, a /dev of null, zero and urandom, its own /proc, a 1 MiB /tmp,
 *      each --ro path bound read-only and each --rw path read-write at its own path (both
 *      nosuid, nodev, noexec) — pivots into it, drops to uid/gid (no groups, no capabilities in
 *      any set, no_new_privs) and execs COMMAND (looked up in PATH). This process waits and ends
 *      the way the child ended: its exit code, or killed by the same signal.
 * Any failure: one line `kiln-vmm-launch: STEP: ERROR` on stderr (QEMU's log) and exit 97;
 * COMMAND is never exec'd after a failed step. A child killed by a signal gets a line too,
 * saying whether it died before or after its exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#define FAILED 97
#define TAP_FD 3
#define KVM_FD 4

struct opts {
  const char **cgroups, **ro, **rw;
  int ncgroups, nro, nrw;
  unsigned long long fsize, nofile;
  int have_fsize, have_nofile;
  const char *netns, *tap, *kvm, *root;
  long long uid, gid;
  char **cmd;
};

/* One line on stderr (a single write, so it never interleaves), then exit 97. err 0: no errno part. */
static void die(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int err, const char *fmt, ...) {
  char line[1024];
  int n = snprintf(line, sizeof(line), "kiln-vmm-launch: ");
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
  va_end(ap);
  if (n < (int)sizeof(line) && err) n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(err));
  if (n > (int)sizeof(line) - 2) n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  if (write(2, line, (size_t)n) < 0) { /* nowhere left to report it */ }
  _exit(FAILED);
}

static unsigned long long number(const char *opt, const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || *end || errno || s[0] == '-') die(EINVAL, "%s %s: not a number", opt, s);
  return v;
}

/* An absolute path without "." or ".." components: it is bound at the same path under the root. */
static const char *jail_path(const char *opt, const char *p) {
  if (p[0] != '/' || !p[1] || strlen(p) > PATH_MAX - 8) die(EINVAL, "%s %s: not an absolute path below /", opt, p);
  for (const char *c = p; *c; c++) {
    if (c[0] != '/') continue;
    size_t len = strcspn(c + 1, "/");
    if ((len == 1 && c[1] == '.') || (len == 2 && c[1] == '.' && c[2] == '.')) die(EINVAL, "%s %s: has a . or .. component", opt, p);
  }
  return p;
}

static void parse(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof(*o));
  o->uid = o->gid = -1;
  o->cgroups = calloc((size_t)argc, sizeof(char *));
  o->ro = calloc((size_t)argc, sizeof(char *));
  o->rw = calloc((size_t)argc, sizeof(char *));
  if (!o->cgroups || !o->ro || !o->rw) die(ENOMEM, "arguments");
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
    const char *opt = argv[i], *val = argv[i + 1];
    if (!val || strcmp(val, "--") == 0) die(EINVAL, "option %s needs a value", opt);
    if (strcmp(opt, "--cgroup-procs") == 0) o->cgroups[o->ncgroups++] = val;
    else if (strcmp(opt, "--fsize") == 0) o->fsize = number(opt, val), o->have_fsize = 1;
    else if (strcmp(opt, "--nofile") == 0) o->nofile = number(opt, val), o->have_nofile = 1;
    else if (strcmp(opt, "--netns") == 0) {
      if (!*val || strchr(val, '/') || strcmp(val, ".") == 0 || strcmp(val, "..") == 0) die(EINVAL, "--netns %s: not a namespace name", val);
      o->netns = val;
    } else if (strcmp(opt, "--tap") == 0) {
      if (!*val || strlen(val) >= IFNAMSIZ) die(EINVAL, "--tap %s: not an interface name", val);
      o->tap = val;
    } else if (strcmp(opt, "--kvm") == 0) o->kvm = val;
    else if (strcmp(opt, "--root") == 0) o->root = val;
    else if (strcmp(opt, "--uid") == 0) o->uid = (long long)number(opt, val);
    else if (strcmp(opt, "--gid") == 0) o->gid = (long long)number(opt, val);
    else if (strcmp(opt, "--ro") == 0) o->ro[o->nro++] = jail_path(opt, val);
    else if (strcmp(opt, "--rw") == 0) o->rw[o->nrw++] = jail_path(opt, val);
    else die(EINVAL, "unknown option %s", opt);
  }
  if (i >= argc || i + 1 >= argc) die(EINVAL, "usage: kiln-vmm-launch [OPTION VALUE]... -- COMMAND [ARG]...");
  o->cmd = argv + i + 1;
  if (o->root) {
    if (o->uid == -1 || o->gid == -1) die(EINVAL, "--root needs --uid and --gid");
    // The VMM never runs as root; 0 (or a value beyond uid_t: -1 means "unchanged") is a caller's bug.
    if (o->uid <= 0 || o->uid >= 0xffffffffLL) die(EINVAL, "--uid %lld: the jail needs a non-root uid", o->uid);
    if (o->gid <= 0 || o->gid >= 0xffffffffLL) die(EINVAL, "--gid %lld: the jail needs a non-root gid", o->gid);
  } else if (o->uid != -1 || o->gid != -1 || o->nro || o->nrw) {
    die(EINVAL, "--uid, --gid, --ro and --rw need --root");
  }
}

static void close_inherited_fds(void) {
  if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
  // Kernels before 5.9: close what /proc/self/fd lists.
  DIR *d = opendir("/proc/self/fd");
  if (!d) die(errno, "close inherited fds: /proc/self/fd");
  struct dirent *e;
  while ((e = readdir(d))) {
    int fd = atoi(e->d_name);
    if (fd > 2 && fd != dirfd(d)) close(fd);
  }
  closedir(d);
}

static void join_cgroup(const char *procs) {
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(errno, "join cgroup %s", procs);
  if (write(fd, "0", 1) != 1) die(errno, "join cgroup %s", procs);
  close(fd);
}

static void limit(int resource, const char *name, unsigned long long v) {
  struct rlimit r = { .rlim_cur = v, .rlim_max = v };
  if (setrlimit(resource, &r) != 0) die(errno, "setrlimit %s %llu", name, v);
}

static void enter_netns(const char *name) {
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "/run/netns/%s", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(errno, "netns %s: open %s", name, path);
  if (setns(fd, CLONE_NEWNET) != 0) die(errno, "netns %s: setns", name);
  close(fd);
}

/* Moves fd to target (no close-on-exec there); the original closes. */
static void place(int fd, int target, const char *what) {
  if (fd == target) {
    if (fcntl(fd, F_SETFD, 0) != 0) die(errno, "%s: clear close-on-exec on fd %d", what, target);
    return;
  }
  if (dup2(fd, target) != target) die(errno, "%s: dup2 to fd %d", what, target);
  close(fd);
}

static void open_tap(const char *ifname) {
  // TUNSETIFF on a name that does not exist would create a new TAP: the sandbox's must exist.
  if (if_nametoindex(ifname) == 0) die(errno ? errno : ENODEV, "TAP %s", ifname);
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) die(errno, "TAP %s: open /dev/net/tun", ifname);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, ifname, strlen(ifname));
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die(errno, "TAP %s: TUNSETIFF", ifname);
  // Removed between the check and the ioctl, the name would now be a fresh TAP of our own.
  if (ioctl(fd, TUNGETIFF, &ifr) != 0) die(errno, "TAP %s: TUNGETIFF", ifname);
  if (!(ifr.ifr_flags & IFF_PERSIST)) die(ENODEV, "TAP %s: not a persistent TAP", ifname);
  place(fd, TAP_FD, "TAP");
}

static void open_kvm(const char *path) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) die(errno, "open %s", path);
  place(fd, KVM_FD, path);
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  if (mount(src, dst, type, flags, data) == 0) return;
  int err = errno;
  if (flags & MS_REMOUNT) die(err, "remount %s", dst);
  if (flags & MS_BIND) die(err, "bind %s on %s", src, dst);
  die(err, "mount %s on %s", type ? type : src, dst);
}

/* Binds src at dst, then remounts that bind with flags (MS_RDONLY, MS_NOSUID…). */
static void bind_mount(const char *src, const char *dst, unsigned long flags) {
  do_mount(src, dst, NULL, MS_BIND, NULL);
  do_mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | flags, NULL);
}

static void make_dir(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) die(errno, "mkdir %s", path);
}

/* mkdir -p of every directory above path (relative, "./…"). */
static void make_parents(char *path) {
  for (char *p = path + 2; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    make_dir(path);
    *p = '/';
  }
}

static void make_file(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) die(errno, "create %s", path);
  close(fd);
}

/* Binds a host path at the same path inside the jail (cwd = its root), creating the mountpoint. */
static void bind_same_path(const char *opt, const char *src, unsigned long flags) {
  struct stat st;
  if (stat(src, &st) != 0) die(errno, "%s %s", opt, src);
  char dst[PATH_MAX];
  snprintf(dst, sizeof(dst), ".%s", src);
  make_parents(dst);
  if (S_ISDIR(st.st_mode)) make_dir(dst);
  else make_file(dst);
  bind_mount(src, dst, flags);
}

static void build_jail(const struct opts *o) {
  do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  do_mount("kiln-jail", o->root, "tmpfs", MS_NOSUID, "mode=0755,size=4m");
  if (chdir(o->root) != 0) die(errno, "chdir %s", o->root);
  const char *dirs[] = { "usr", "dev", "proc", "tmp", ".old" };
  for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) make_dir(dirs[i]);
  // Merged /usr: the host's /bin, /lib… are symlinks into usr; the jail gets the same ones.
  const char *links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
  for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
    char host[16], target[PATH_MAX];
    struct stat st;
    snprintf(host, sizeof(host), "/%s", links[i]);
    if (lstat(host, &st) != 0 || !S_ISLNK(st.st_mode)) continue;
    ssize_t n = readlink(host, target, sizeof(target) - 1);
    if (n < 0) die(errno, "readlink %s", host);
    target[n] = 0;
    if (symlink(target, links[i]) != 0) die(errno, "symlink %s", links[i]);
  }
  bind_mount("/usr", "usr", MS_RDONLY | MS_NOSUID | MS_NODEV);
  do_mount("kiln-dev", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k");
  do_mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  do_mount("kiln-tmp", "tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=1m");
  for (int i = 0; i < o->nro; i++) bind_same_path("--ro", o->ro[i], MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  for (int i = 0; i < o->nrw; i++) bind_same_path("--rw", o->rw[i], MS_NOSUID | MS_NODEV | MS_NOEXEC);
  const char *devs[] = { "null", "zero", "urandom" };
  for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
    char host[32], inside[32];
    snprintf(host, sizeof(host), "/dev/%s", devs[i]);
    snprintf(inside, sizeof(inside), "dev/%s", devs[i]);
    make_file(inside);
    do_mount(host, inside, NULL, MS_BIND, NULL);
  }
  if (syscall(SYS_pivot_root, ".", ".old") != 0) die(errno, "pivot_root %s", o->root);
  if (chdir("/") != 0) die(errno, "chdir /");
  if (umount2("/.old", MNT_DETACH) != 0) die(errno, "detach the host's root");
  if (rmdir("/.old") != 0) die(errno, "rmdir /.old");
  do_mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL);
}

static int capget_all(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  return (int)syscall(SYS_capget, &h, data);
}

/* setpriv --reuid --regid --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs, then checked. */
static void drop_privileges(uid_t uid, gid_t gid) {
  // The bounding set needs CAP_SETPCAP, so it goes first; the kernel names its last cap by
  // refusing (EINVAL) the one after it.
  int cap = 0;
  for (; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) die(errno, "drop capability %d from the bounding set", cap);
  if (errno != EINVAL || cap == 0) die(errno, "read the bounding set");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) die(errno, "clear the ambient set");
  if (setgroups(0, NULL) != 0) die(errno, "setgroups");
  if (setresgid(gid, gid, gid) != 0) die(errno, "setresgid %u", gid);
  if (setresuid(uid, uid, uid) != 0) die(errno, "setresuid %u", uid);
  // Leaving uid 0 empties the permitted and effective sets; this empties inheritable too (and
  // the others even under securebits that would have kept them).
  struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct none[2];
  memset(none, 0, sizeof(none));
  if (syscall(SYS_capset, &h, none) != 0) die(errno, "clear capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(errno, "no_new_privs");

  uid_t r, e, s;
  gid_t rg, eg, sg;
  struct __user_cap_data_struct caps[2];
  if (getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid || getuid() == 0 || geteuid() == 0) die(EPERM, "still uid 0 after setresuid");
  if (getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid) die(EPERM, "gid not %u after setresgid", gid);
  if (getgroups(0, NULL) != 0) die(EPERM, "supplementary groups left");
  if (capget_all(caps) != 0) die(errno, "capget");
  for (int i = 0; i < 2; i++)
    if (caps[i].effective || caps[i].permitted || caps[i].inheritable) die(EPERM, "capabilities left");
  for (int c = 0; c < cap; c++)
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0) die(EPERM, "capability %d left in the bounding set", c);
  if (setresuid(0, 0, 0) == 0) die(EPERM, "could become root again");
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) die(EPERM, "no_new_privs not set");
}

/* QEMU starts with no signal blocked and every disposition at its default. */
static void reset_signals(void) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL); // glibc's internal signals refuse: fine
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) die(errno, "sigprocmask");
}

static void exec_command(char **cmd) {
  reset_signals();
  execvp(cmd[0], cmd);
  die(errno, "exec %s", cmd[0]);
}

/* Dies with SIGKILL when the launcher dies; the pipe shows whether that already happened. */
static void kill_with_parent(int parent_alive) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die(errno, "PR_SET_PDEATHSIG");
  // getppid() cannot tell (the parent is outside this PID namespace: it reads 0): the write
  // end closes only when the launcher is gone.
  struct pollfd p = { .fd = parent_alive, .events = POLLIN };
  int n = poll(&p, 1, 0);
  if (n < 0) die(errno, "poll");
  if (n > 0) die(0, "the launcher died before its child was set up");
}

/* Ends this process the way the child ended. */
static void mirror(int status, int execd, const char *cmd) {
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  int sig = WTERMSIG(status);
  char c;
  const char *name = sigabbrev_np(sig);
  if (read(execd, &c, 1) == 1) fprintf(stderr, "kiln-vmm-launch: %s killed by SIG%s\n", cmd, name ? name : "?");
  else fprintf(stderr, "kiln-vmm-launch: child killed by SIG%s before exec\n", name ? name : "?");
  struct rlimit none = { 0, 0 };
  setrlimit(RLIMIT_CORE, &none); // the child dumped its core if it should; not this process
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  kill(getpid(), sig);
  _exit(128 + sig);
}

static void jail_and_exec(const struct opts *o) {
  // Like unshare --fork: SIGINT/SIGTERM sent to the whole group are QEMU's to handle (a
  // graceful quit that this process then mirrors); the child unblocks them at once.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGINT);
  sigaddset(&term, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &term, &old) != 0) die(errno, "sigprocmask");
  int alive[2], execd[2];
  if (pipe2(alive, O_CLOEXEC) != 0 || pipe2(execd, O_CLOEXEC) != 0) die(errno, "pipe");
  if (unshare(CLONE_NEWNS | CLONE_NEWPID) != 0) die(errno, "unshare mount+pid namespaces");
  pid_t pid = fork();
  if (pid < 0) die(errno, "fork");
  if (pid > 0) {
    // The device fds are QEMU's; this process keeps only its pipe ends.
    if (o->tap) close(TAP_FD);
    if (o->kvm) close(KVM_FD);
    close(alive[0]);
    close(execd[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
      if (errno != EINTR) die(errno, "waitpid");
    mirror(status, execd[0], o->cmd[0]);
  }
  close(alive[1]);
  close(execd[0]);
  if (sigprocmask(SIG_SETMASK, &old, NULL) != 0) die(errno, "sigprocmask");
  kill_with_parent(alive[0]);
  build_jail(o);
  drop_privileges((uid_t)o->uid, (gid_t)o->gid);
  // Changing uid cleared the parent-death signal; QEMU keeps it.
  kill_with_parent(alive[0]);
  if (write(execd[1], "x", 1) != 1) die(errno, "write");
  exec_command(o->cmd);
}

int main(int argc, char **argv) {
  struct opts o;
  parse(argc, argv, &o);
  close_inherited_fds();
  for (int i = 0; i < o.ncgroups; i++) join_cgroup(o.cgroups[i]);
  if (o.have_fsize) limit(RLIMIT_FSIZE, "fsize", o.fsize);
  if (o.have_nofile) limit(RLIMIT_NOFILE, "nofile", o.nofile);
  if (o.netns) enter_netns(o.netns);
  if (o.tap) open_tap(o.tap);
  if (o.kvm) open_kvm(o.kvm);
  if (!o.root) exec_command(o.cmd);
  jail_and_exec(&o);
  return FAILED;
}
