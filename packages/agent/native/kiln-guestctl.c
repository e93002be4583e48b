/*
 * kiln-guestctl: the agent's resident helper for the system calls Node.js cannot make.
 *
 * The agent starts it once at boot, so it is already running in every snapshot: after a
 * restore, making the clone unique (clock, credited entropy, MAC, address, route) costs a few
 * system calls instead of a dozen process spawns whose code the emulator must translate again.
 *
 * Two ways to reach it, one protocol:
 *   kiln-guestctl               requests on stdin, replies on stdout (the agent's pipe)
 *   kiln-guestctl --port PATH   requests from the host on the virtio-serial port PATH
 *                               (org.kiln.guestctl): kilnd personalizes a restored clone
 *                               without the agent's Node code on the path at all
 *
 * One request per line, one reply per line, in order. IFNAME "-" means the virtio-net NIC.
 *   clock SECONDS NANOSECONDS      clock_settime(CLOCK_REALTIME)
 *   entropy HEX                    RNDADDENTROPY: mixed in and credited (8 bits per byte), then
 *                                  RNDRESEEDCRNG: the kernel's CRNG is rekeyed from the pool at
 *                                  once (else clones restored within its reseed interval, seconds
 *                                  to a minute, would keep drawing the template's stream)
 *   link IFNAME up|down            SIOCSIFFLAGS
 *   mac IFNAME XX:XX:XX:XX:XX:XX   SIOCSIFHWADDR (the link must be down for virtio-net)
 *   mtu IFNAME BYTES               SIOCSIFMTU
 *   addr IFNAME A.B.C.D PREFIXLEN  SIOCSIFADDR + SIOCSIFNETMASK (replaces the primary address)
 *   route-default GATEWAY IFNAME   removes every default route, then adds this one
 *   hostname NAME                  sethostname + /etc/hostname + /etc/hosts (as guest-init writes it)
 *   machine-id HEX32               /etc/machine-id
 *   resolv NAMESERVER...           /etc/resolv.conf (replacing a symlink)
 *   nic WAIT_MS                    the virtio-net NIC's name ("ok eth0"), waiting for it to appear
                                    (found once at start: a restored clone has the same NIC)
 *   docker-ping SOCKET WAIT_MS     waits until dockerd answers GET /_ping on SOCKET with 200;
 *                                  "ok WAITED_MS"
 *   warm PATH                      runs PATH (no arguments, stdio /dev/null) and waits: after a
 *                                  restore this makes TCG translate the kernel's fork/exec and
 *                                  the dynamic loader's code once, off the agent's critical path;
 *                                  "ok MS"
 *   ping                           liveness
 * Replies: "ok", "ok VALUE" or "err ERRNO MESSAGE". On stdin it exits at EOF; on the port it
 * waits (SIGIO, or a 5 s poll) for the host to connect again.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/random.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

#define MAX_LINE 16384
#define MAX_REPLY 512
#define MAX_ENTROPY 4096

static int sock = -1;
static int out_fd = 1;
static char reply[MAX_REPLY];
static char nic_name[IFNAMSIZ];

static int fail(int err, const char *what) {
  snprintf(reply, sizeof(reply), "err %d %s: %s", err, what, strerror(err));
  return -1;
}

static int bad(const char *what) {
  snprintf(reply, sizeof(reply), "err %d %s", EINVAL, what);
  return -1;
}

/* Writes all of buf (a port may take it in pieces). */
static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

static int write_file(const char *path, const char *content, int replace_link) {
  struct stat st;
  if (replace_link && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return fail(errno, path);
  int rc = write_all(fd, content, strlen(content));
  int err = errno;
  close(fd);
  return rc == 0 ? 0 : fail(err, path);
}

/* The virtio-net interface: its device's driver link ends in /virtio_net. */
static int find_nic(void) {
  DIR *d = opendir("/sys/class/net");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d))) {
    char path[300], target[256];
    if (e->d_name[0] == '.' || strlen(e->d_name) >= IFNAMSIZ) continue;
    snprintf(path, sizeof(path), "/sys/class/net/%s/device/driver", e->d_name);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = 0;
    size_t len = (size_t)n;
    if (len >= 11 && strcmp(target + len - 11, "/virtio_net") == 0 && (found < 0 || strcmp(e->d_name, nic_name) < 0)) {
      strncpy(nic_name, e->d_name, IFNAMSIZ - 1);
      found = 0;
    }
  }
  closedir(d);
  return found;
}

static int do_nic(const char *wait_ms) {
  char *end;
  long ms = wait_ms ? strtol(wait_ms, &end, 10) : 0;
  if (wait_ms && (*end || ms < 0 || ms > 120000)) return bad("usage: nic WAIT_MS");
  if (nic_name[0]) {
    char path[64];
    snprintf(path, sizeof(path), "/sys/class/net/%s", nic_name);
    if (access(path, F_OK) == 0) {
      snprintf(reply, sizeof(reply), "ok %s", nic_name);
      return 0;
    }
    nic_name[0] = 0;
  }
  for (long waited = 0;; waited += 50) {
    if (find_nic() == 0) {
      snprintf(reply, sizeof(reply), "ok %s", nic_name);
      return 0;
    }
    if (waited >= ms) break;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  snprintf(reply, sizeof(reply), "err %d no virtio-net interface", ENODEV);
  return -1;
}

/* "-" names the virtio-net NIC (looked up once). */
static const char *ifname_arg(const char *name) {
  if (name && strcmp(name, "-") == 0) {
    if (nic_name[0] == 0 && find_nic() != 0) return NULL;
    return nic_name;
  }
  return name;
}

static int do_hostname(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > 63) return bad("bad hostname");
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return bad("bad hostname");
  }
  if (sethostname(name, n) != 0) return fail(errno, "sethostname");
  char line[80], hosts[200];
  snprintf(line, sizeof(line), "%s\n", name);
  if (write_file("/etc/hostname", line, 0)) return -1;
  snprintf(hosts, sizeof(hosts), "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name);
  return write_file("/etc/hosts", hosts, 0);
}

static int do_machine_id(const char *hex) {
  if (!hex || strlen(hex) != 32) return bad("machine-id: 32 hex digits");
  for (int i = 0; i < 32; i++) if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'))) return bad("machine-id: 32 hex digits");
  char line[40];
  snprintf(line, sizeof(line), "%s\n", hex);
  return write_file("/etc/machine-id", line, 0);
}

static int do_resolv(char **ns, int count) {
  char content[512] = "";
  struct in_addr a;
  if (count < 1 || count > 3) return bad("resolv: 1 to 3 nameservers");
  for (int i = 0; i < count; i++) {
    if (inet_pton(AF_INET, ns[i], &a) != 1) return bad("resolv: bad nameserver address");
    strcat(content, "nameserver ");
    strcat(content, ns[i]);
    strcat(content, "\n");
  }
  strcat(content, "options timeout:2 attempts:3\n");
  return write_file("/etc/resolv.conf", content, 1);
}

static int ifreq_for(struct ifreq *ifr, const char *name) {
  memset(ifr, 0, sizeof(*ifr));
  if (!name || strlen(name) == 0 || strlen(name) >= IFNAMSIZ) return bad("bad interface name");
  strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
  return 0;
}

static int parse_ipv4(const char *s, struct sockaddr *out) {
  struct sockaddr_in *sin = (struct sockaddr_in *)out;
  memset(out, 0, sizeof(*out));
  sin->sin_family = AF_INET;
  return s && inet_pton(AF_INET, s, &sin->sin_addr) == 1 ? 0 : -1;
}

static int do_clock(char *sec, char *nsec) {
  char *end;
  struct timespec ts;
  if (!sec || !nsec) return bad("usage: clock SECONDS NANOSECONDS");
  errno = 0;
  ts.tv_sec = strtoll(sec, &end, 10);
  if (errno || *end) return bad("bad seconds");
  ts.tv_nsec = strtol(nsec, &end, 10);
  if (errno || *end || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L) return bad("bad nanoseconds");
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) return fail(errno, "clock_settime");
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int do_entropy(const char *hex) {
  static unsigned char buf[sizeof(struct rand_pool_info) + MAX_ENTROPY];
  struct rand_pool_info *info = (struct rand_pool_info *)buf;
  size_t n = hex ? strlen(hex) : 0;
  if (n == 0 || n % 2 || n / 2 > MAX_ENTROPY) return bad("entropy: 1 to 4096 bytes of hex");
  unsigned char *out = (unsigned char *)info->buf;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return bad("entropy: not hex");
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  info->buf_size = (int)(n / 2);
  info->entropy_count = (int)(n / 2 * 8);
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno, "open /dev/urandom");
  int rc = ioctl(fd, RNDADDENTROPY, info);
  int err = errno;
  memset(out, 0, n / 2);
  if (rc != 0) {
    close(fd);
    return fail(err, "RNDADDENTROPY");
  }
  rc = ioctl(fd, RNDRESEEDCRNG);
  err = errno;
  close(fd);
  return rc == 0 ? 0 : fail(err, "RNDRESEEDCRNG");
}

static int do_link(char *name, char *state) {
  struct ifreq ifr;
  if (ifreq_for(&ifr, name)) return -1;
  if (!state || (strcmp(state, "up") && strcmp(state, "down"))) return bad("usage: link IFNAME up|down");
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) return fail(errno, "SIOCGIFFLAGS");
  if (!strcmp(state, "up")) ifr.ifr_flags |= IFF_UP;
  else ifr.ifr_flags &= ~IFF_UP;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) return fail(errno, "SIOCSIFFLAGS");
  return 0;
}

static int do_mac(char *name, char *mac) {
  struct ifreq ifr;
  unsigned int b[6];
  char tail;
  if (ifreq_for(&ifr, name)) return -1;
  if (!mac || sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) return bad("bad MAC address");
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  for (int i = 0; i < 6; i++) ifr.ifr_hwaddr.sa_data[i] = (char)b[i];
  if (ioctl(sock, SIOCSIFHWADDR, &ifr) != 0) return fail(errno, "SIOCSIFHWADDR");
  return 0;
}

static int do_mtu(char *name, char *mtu) {
  struct ifreq ifr;
  char *end;
  if (ifreq_for(&ifr, name)) return -1;
  long v = mtu ? strtol(mtu, &end, 10) : 0;
  if (!mtu || *end || v < 68 || v > 65535) return bad("bad MTU");
  ifr.ifr_mtu = (int)v;
  if (ioctl(sock, SIOCSIFMTU, &ifr) != 0) return fail(errno, "SIOCSIFMTU");
  return 0;
}

static int do_addr(char *name, char *addr, char *prefix) {
  struct ifreq ifr;
  char *end;
  if (ifreq_for(&ifr, name)) return -1;
  long len = prefix ? strtol(prefix, &end, 10) : -1;
  if (!prefix || *end || len < 1 || len > 32) return bad("bad prefix length");
  if (parse_ipv4(addr, &ifr.ifr_addr)) return bad("bad IPv4 address");
  if (ioctl(sock, SIOCSIFADDR, &ifr) != 0) return fail(errno, "SIOCSIFADDR");
  struct sockaddr_in *mask = (struct sockaddr_in *)&ifr.ifr_netmask;
  memset(&ifr.ifr_netmask, 0, sizeof(ifr.ifr_netmask));
  mask->sin_family = AF_INET;
  mask->sin_addr.s_addr = htonl(len == 32 ? 0xffffffffu : ~(0xffffffffu >> len));
  if (ioctl(sock, SIOCSIFNETMASK, &ifr) != 0) return fail(errno, "SIOCSIFNETMASK");
  return 0;
}

static int do_route_default(char *gw, char *name) {
  struct rtentry rt;
  char dev[IFNAMSIZ];
  if (!name || strlen(name) == 0 || strlen(name) >= IFNAMSIZ) return bad("bad interface name");
  strncpy(dev, name, sizeof(dev) - 1);
  dev[sizeof(dev) - 1] = 0;
  for (int i = 0; i < 64; i++) {
    memset(&rt, 0, sizeof(rt));
    parse_ipv4("0.0.0.0", &rt.rt_dst);
    parse_ipv4("0.0.0.0", &rt.rt_genmask);
    if (ioctl(sock, SIOCDELRT, &rt) != 0) {
      if (errno == ESRCH) break;
      return fail(errno, "SIOCDELRT");
    }
  }
  memset(&rt, 0, sizeof(rt));
  if (parse_ipv4(gw, &rt.rt_gateway)) return bad("bad gateway address");
  parse_ipv4("0.0.0.0", &rt.rt_dst);
  parse_ipv4("0.0.0.0", &rt.rt_genmask);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = dev;
  if (ioctl(sock, SIOCADDRT, &rt) != 0) return fail(errno, "SIOCADDRT");
  return 0;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* One GET /_ping on a unix socket: 0 when dockerd answered 200. */
static int ping_once(const char *path, long timeout_ms) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int ok = -1;
  static const char req[] = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
  char buf[64];
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write_all(fd, req, sizeof(req) - 1) == 0) {
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) got += (size_t)n;
    buf[got] = 0;
    if (got >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0) ok = 0;
  }
  close(fd);
  return ok;
}

static int do_docker_ping(const char *path, const char *wait_ms) {
  char *end;
  if (!path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) return bad("docker-ping: bad socket path");
  long ms = wait_ms ? strtol(wait_ms, &end, 10) : -1;
  if (!wait_ms || *end || ms < 0 || ms > 600000) return bad("usage: docker-ping SOCKET WAIT_MS");
  long start = now_ms();
  for (;;) {
    long left = ms - (now_ms() - start);
    if (ping_once(path, left < 1000 ? (left < 50 ? 50 : left) : 1000) == 0) {
      snprintf(reply, sizeof(reply), "ok %ld", now_ms() - start);
      return 0;
    }
    if (now_ms() - start >= ms) break;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  snprintf(reply, sizeof(reply), "err %d dockerd did not answer on %s within %ld ms", ETIMEDOUT, path, ms);
  return -1;
}

static int do_warm(const char *path) {
  if (!path || path[0] != '/') return bad("usage: warm /ABSOLUTE/PATH");
  long start = now_ms();
  pid_t pid = fork();
  if (pid < 0) return fail(errno, "fork");
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    execl(path, path, (char *)NULL);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail(errno, "waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    snprintf(reply, sizeof(reply), "err %d %s did not exit 0", ECHILD, path);
    return -1;
  }
  snprintf(reply, sizeof(reply), "ok %ld", now_ms() - start);
  return 0;
}

#define MAX_ARGS 6

static int dispatch(char *line) {
  char *save = NULL;
  char *argv[MAX_ARGS + 1] = {0};
  int argc = 0;
  for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
    if (argc == MAX_ARGS) return bad("too many arguments");
    argv[argc++] = t;
  }
  char *cmd = argv[0], *a = argv[1], *b = argv[2], *c = argv[3];
  if (!cmd) return bad("empty request");
  if (!strcmp(cmd, "ping")) return 0;
  if (!strcmp(cmd, "clock")) return do_clock(a, b);
  if (!strcmp(cmd, "entropy")) return do_entropy(a);
  if (!strcmp(cmd, "hostname")) return do_hostname(a);
  if (!strcmp(cmd, "machine-id")) return do_machine_id(a);
  if (!strcmp(cmd, "resolv")) return do_resolv(argv + 1, argc - 1);
  if (!strcmp(cmd, "nic")) return do_nic(a);
  if (!strcmp(cmd, "docker-ping")) return do_docker_ping(a, b);
  if (!strcmp(cmd, "warm")) return do_warm(a);
  if (!strcmp(cmd, "route-default")) {
    const char *dev = ifname_arg(b);
    return dev ? do_route_default(a, (char *)dev) : fail(ENODEV, "no virtio-net interface");
  }
  const char *dev = ifname_arg(a);
  if (a && !dev) return fail(ENODEV, "no virtio-net interface");
  if (!strcmp(cmd, "link")) return do_link((char *)dev, b);
  if (!strcmp(cmd, "mac")) return do_mac((char *)dev, b);
  if (!strcmp(cmd, "mtu")) return do_mtu((char *)dev, b);
  if (!strcmp(cmd, "addr")) return do_addr((char *)dev, b, c);
  return bad("unknown request");
}

/* Handles one request line and writes its reply. */
static void serve_line(char *line) {
  reply[0] = 0;
  int rc = dispatch(line);
  if (rc == 0 && strncmp(reply, "ok", 2) != 0) strcpy(reply, "ok");
  size_t n = strlen(reply);
  reply[n] = '\n';
  write_all(out_fd, reply, n + 1);
}

/*
 * Reads lines from fd until EOF. Returns after EOF with any partial line dropped. Overlong
 * lines are answered with an error and skipped.
 */
static void serve_fd(int fd) {
  static char buf[MAX_LINE];
  size_t used = 0;
  int skipping = 0;
  for (;;) {
    ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    used += (size_t)n;
    char *start = buf, *nl;
    while ((nl = memchr(start, '\n', used - (size_t)(start - buf)))) {
      *nl = 0;
      if (skipping) skipping = 0;
      else serve_line(start);
      start = nl + 1;
    }
    used -= (size_t)(start - buf);
    memmove(buf, start, used);
    if (used == sizeof(buf) - 1) {
      used = 0;
      if (!skipping) {
        bad("request too long");
        size_t len = strlen(reply);
        reply[len] = '\n';
        write_all(out_fd, reply, len + 1);
      }
      skipping = 1;
    }
  }
}

/*
 * The virtio-serial port reads EOF while the host is not connected. The kernel sends SIGIO to
 * the port's owner when the host connects (or goes), so wait for that (with a 5 s poll as a
 * safety net) instead of spinning. The port stays open: closing it would discard a request the
 * host sent in the meantime.
 */
static int serve_port(const char *path) {
  sigset_t io;
  sigemptyset(&io);
  sigaddset(&io, SIGIO);
  sigprocmask(SIG_BLOCK, &io, NULL);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    perror("kiln-guestctl: open port");
    return 1;
  }
  fcntl(fd, F_SETOWN, getpid());
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC);
  out_fd = fd;
  for (;;) {
    serve_fd(fd);
    struct timespec wait = {5, 0};
    sigtimedwait(&io, NULL, &wait);
  }
}

int main(int argc, char **argv) {
  sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    perror("kiln-guestctl: socket");
    return 1;
  }
  find_nic(); /* before the snapshot: a clone finds it cached */
  if (argc == 3 && strcmp(argv[1], "--port") == 0) return serve_port(argv[2]);
  if (argc != 1) {
    fprintf(stderr, "usage: kiln-guestctl [--port PATH]\n");
    return 2;
  }
  serve_fd(0);
  return 0;
}
