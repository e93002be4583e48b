/*
 * kiln-pty: runs a command on a new pseudo-terminal for the agent (which cannot load native
 * Node modules, so it has no forkpty of its own).
 *
 *   kiln-pty ROWS COLS COMMAND [ARG...]
 *
 * The command runs in a new session with the terminal as its controlling tty and stdio, at
 * the given size (TERM and the rest of the environment are the caller's). kiln-pty relays
 *   stdin  -> the terminal (keystrokes; Ctrl-C is just byte 0x03, the line discipline turns it
 *             into SIGINT for the foreground job). EOF on stdin stops the relay only: closing
 *             the terminal would hang the command up.
 *   the terminal -> stdout (what the command writes, echo included)
 *   fd 3 (if open): lines "ROWS COLS\n": TIOCSWINSZ on the terminal; the kernel then sends
 *             SIGWINCH to its foreground process group.
 * SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to kiln-pty are passed on to the
 * command's process group (kiln-pty runs in another session). It exits once the command has
 * exited and its output is relayed, with the command's status: the same exit code, or killed
 * by the same signal. Errors of its own go to stderr, with exit code 125 (127: command not
 * found, 126: not executable), as a shell reports them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int sigpipe_fds[2] = {-1, -1};
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])

static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  if (write(sigpipe_fds[1], &b, 1) < 0) { /* full: a signal is pending already */ }
  errno = saved;
}

static void die(const char *what) {
  fprintf(stderr, "kiln-pty: %s: %s\n", what, strerror(errno));
  exit(125);
}

static int parse_size(const char *s, int max) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 1 || v > max) return -1;
  return (int)v;
}

/* Writes all of buf to a blocking fd; returns -1 on error. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static void child(const char *slave_name, int master, char **argv) {
  for (size_t i = 0; i < NFORWARDED; i++) signal(forwarded[i], SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (setsid() < 0) die("setsid");
  int slave = open(slave_name, O_RDWR);
  if (slave < 0) die("open the terminal");
  if (ioctl(slave, TIOCSCTTY, 0) < 0) die("TIOCSCTTY");
  close(master);
  if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) die("dup2");
  if (slave > 2) close(slave);
  close(3);
  close(sigpipe_fds[0]);
  close(sigpipe_fds[1]);
  execvp(argv[0], argv);
  int code = errno == ENOENT ? 127 : 126;
  fprintf(stderr, "kiln-pty: %s: %s\r\n", argv[0], strerror(errno));
  _exit(code);
}

/* Applies complete "ROWS COLS" lines from the control pipe. Returns 0 at EOF. */
static int control(int ctl, int master, char *line, size_t *len, size_t cap) {
  ssize_t n = read(ctl, line + *len, cap - *len);
  if (n < 0) return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (n == 0) return 0;
  *len += (size_t)n;
  char *nl;
  while ((nl = memchr(line, '\n', *len)) != NULL) {
    *nl = '\0';
    int rows = 0, cols = 0;
    char extra;
    if (sscanf(line, "%d %d%c", &rows, &cols, &extra) == 2 && rows >= 1 && rows <= 10000 && cols >= 1 && cols <= 10000) {
      struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
      if (ioctl(master, TIOCSWINSZ, &ws) < 0) fprintf(stderr, "kiln-pty: TIOCSWINSZ: %s\n", strerror(errno));
    }
    size_t used = (size_t)(nl - line) + 1;
    memmove(line, nl + 1, *len - used);
    *len -= used;
  }
  if (*len == cap) *len = 0; /* an overlong line: drop it */
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: kiln-pty ROWS COLS COMMAND [ARG...]\n");
    return 125;
  }
  int rows = parse_size(argv[1], 10000), cols = parse_size(argv[2], 10000);
  if (rows < 0 || cols < 0) {
    fprintf(stderr, "kiln-pty: bad size %s %s\n", argv[1], argv[2]);
    return 125;
  }
  int ctl = fcntl(3, F_GETFD) >= 0 ? 3 : -1;

  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die("posix_openpt");
  if (grantpt(master) < 0 || unlockpt(master) < 0) die("unlockpt");
  char slave_name[128];
  if (ptsname_r(master, slave_name, sizeof slave_name) != 0) die("ptsname");
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (ioctl(master, TIOCSWINSZ, &ws) < 0) die("TIOCSWINSZ");

  if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe");
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < NFORWARDED; i++) sigaction(forwarded[i], &sa, NULL);
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) child(slave_name, master, argv + 3);

  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  if (ctl >= 0) fcntl(ctl, F_SETFL, fcntl(ctl, F_GETFL) | O_NONBLOCK);
  char out[65536], in[4096], line[256];
  size_t in_len = 0, in_off = 0, line_len = 0;
  int stdin_open = 1, status = 0, exited = 0;

  for (;;) {
    struct pollfd fds[4];
    int nfds = 0, i_master = nfds++, i_sig = nfds++, i_in = -1, i_ctl = -1;
    fds[i_master] = (struct pollfd){.fd = master, .events = (short)(POLLIN | (in_len > in_off ? POLLOUT : 0))};
    fds[i_sig] = (struct pollfd){.fd = sigpipe_fds[0], .events = POLLIN};
    if (stdin_open && in_len == in_off) fds[i_in = nfds++] = (struct pollfd){.fd = 0, .events = POLLIN};
    if (ctl >= 0) fds[i_ctl = nfds++] = (struct pollfd){.fd = ctl, .events = POLLIN};
    /* Once the command exited, drain what is left of its output without waiting for more. */
    if (poll(fds, (nfds_t)nfds, exited ? 0 : -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[i_sig].revents & POLLIN) {
      unsigned char sigs[64];
      ssize_t n = read(sigpipe_fds[0], sigs, sizeof sigs);
      for (ssize_t i = 0; i < n; i++) {
        if (sigs[i] != SIGCHLD) kill(-pid, sigs[i]);
      }
      if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = 1;
    }
    int master_done = 0;
    if (fds[i_master].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, out, sizeof out);
      if (n > 0) {
        if (write_all(1, out, (size_t)n) < 0) { /* nobody reads our output: keep draining */ }
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        /* EIO: every holder of the terminal closed it; the command has exited or is exiting. */
        if (!exited && waitpid(pid, &status, 0) == pid) exited = 1;
        master_done = 1;
      }
    } else if (exited) {
      master_done = 1;
    }
    if (i_in >= 0 && (fds[i_in].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(0, in, sizeof in);
      if (n > 0) {
        in_len = (size_t)n;
        in_off = 0;
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_open = 0;
      }
    }
    if (in_len > in_off && (fds[i_master].revents & POLLOUT)) {
      ssize_t n = write(master, in + in_off, in_len - in_off);
      if (n > 0) in_off += (size_t)n;
      if (in_off == in_len) in_len = in_off = 0;
    }
    if (i_ctl >= 0 && (fds[i_ctl].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!control(ctl, master, line, &line_len, sizeof line)) {
        close(ctl);
        ctl = -1;
      }
    }
    if (master_done) break;
  }

  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
