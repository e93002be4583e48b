/*
 * kiln-oci: the guest dockerd's default OCI runtime, a thin front of crun that takes Docker's
 * `libnetwork-setkey` prestart hook off the slow path.
 *
 * Docker 26 puts a prestart hook into every container with its own network namespace (also
 * with --network none): `/proc/<dockerd pid>/exe libnetwork-setkey -exec-root=R CID SHORTID`,
 * a re-exec of the ~90 MB dockerd binary whose only work is to read the OCI state (JSON, on
 * stdin) and send {"ContainerID":CID,"Key":"/proc/<pid>/ns/net"} to dockerd's external-key
 * socket R/libnetwork/SHORTID.sock, then read "success" back (moby libnetwork,
 * sandbox_externalkey_unix.go). Under TCG that re-exec alone costs seconds (Go runtime and
 * package init of a huge binary). This program does the same in microseconds.
 *
 * Two modes:
 *   argv = libnetwork-setkey [-exec-root=R] CID SHORTID      (as the hook, state on stdin: an
 *          OCI hook's `args` is its whole argv, argv[0] included, and Docker's names the mode)
 *   kiln-oci libnetwork-setkey [-exec-root=R] CID SHORTID    (the same, by hand)
 *   kiln-oci <crun arguments...>                             (as the runtime)
 *   argv[0] = containerd-shim-runc-v2 <shim arguments...>    (containerd's shim, below)
 * As the runtime, for `create` it rewrites the bundle's config.json so that the hook's path
 * is this program (same arguments), then execs crun with the arguments unchanged. Anything
 * unexpected (no bundle, no hook, a write error) leaves config.json as it was: Docker's own
 * hook then runs, slower but correct.
 *
 * Shared shim. containerd starts a shim per container (`containerd-shim-runc-v2 ... start`, a
 * Go binary that starts itself again as the shim daemon): under TCG two Go start-ups per
 * `docker run`. guest-init keeps one long-lived container (the anchor) in Docker's containerd
 * namespace and writes its shim's address to /run/kiln/shim-groups/<namespace>. Installed as
 * /opt/kiln/bin/containerd-shim-runc-v2 (first on containerd's PATH), this program answers a
 * `start` in that namespace with that address when the shim accepts a connection (what the
 * runc shim itself does for containers grouped by the io.containerd.runc.v2.group annotation,
 * the way Kubernetes pods share one shim), so the container is served by the running shim.
 * Every other call, and any failure, execs the real shim with the same arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SELF "/opt/kiln/bin/kiln-oci"
#define CRUN "/usr/bin/crun"
#define MAX_CONFIG (8 << 20)
#define REAL_SHIM "/usr/bin/containerd-shim-runc-v2"
#define SHIM_GROUPS "/run/kiln/shim-groups"


static char *read_all(int fd, size_t max, size_t *len) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf) return NULL;
  for (;;) {
    if (n == cap) {
      if (cap >= max) break;
      cap *= 2;
      char *b = realloc(buf, cap + 1);
      if (!b) { free(buf); return NULL; }
      buf = b;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { free(buf); return NULL; }
    if (r == 0) break;
    n += (size_t)r;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

/* --- hook mode ------------------------------------------------------------------------ */

static int setkey(int argc, char **argv, int first) {
  const char *exec_root = "/run/docker";
  const char *pos[2] = {NULL, NULL};
  int npos = 0;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--exec-root=", 12) == 0) exec_root = a + 12;
    else if (strncmp(a, "-exec-root=", 11) == 0) exec_root = a + 11;
    else if ((strcmp(a, "-exec-root") == 0 || strcmp(a, "--exec-root") == 0) && i + 1 < argc) exec_root = argv[++i];
    else if (npos < 2) pos[npos++] = a;
  }
  if (npos < 2) { fprintf(stderr, "kiln-oci: libnetwork-setkey expects CONTAINER-ID SHORT-CONTROLLER-ID\n"); return 1; }
  size_t len = 0;
  char *state = read_all(0, 1 << 20, &len);
  if (!state) { perror("kiln-oci: reading the OCI state"); return 1; }
  char *p = strstr(state, "\"pid\"");
  if (!p) { fprintf(stderr, "kiln-oci: no pid in the OCI state\n"); return 1; }
  p += 5;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':') p++;
  long pid = strtol(p, NULL, 10);
  if (pid <= 0) { fprintf(stderr, "kiln-oci: bad pid in the OCI state\n"); return 1; }

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int w = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/libnetwork/%s.sock", exec_root, pos[1]);
  if (w < 0 || (size_t)w >= sizeof addr.sun_path) { fprintf(stderr, "kiln-oci: socket path too long\n"); return 1; }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { fprintf(stderr, "kiln-oci: connect %s: %s\n", addr.sun_path, strerror(errno)); return 1; }
  char msg[1024];
  /* container ids are hex: nothing to escape */
  int m = snprintf(msg, sizeof msg, "{\"ContainerID\":\"%s\",\"Key\":\"/proc/%ld/ns/net\"}\n", pos[0], pid);
  if (m < 0 || (size_t)m >= sizeof msg || write(fd, msg, (size_t)m) != m) { fprintf(stderr, "kiln-oci: sending the key failed\n"); return 1; }
  char reply[1025];
  ssize_t r;
  do r = read(fd, reply, sizeof reply - 1); while (r < 0 && errno == EINTR);
  if (r < 0) { perror("kiln-oci: reading the reply"); return 1; }
  reply[r] = 0;
  if (strcmp(reply, "success") != 0) { fprintf(stderr, "%s\n", reply); return 1; }
  return 0;
}

/* --- runtime mode --------------------------------------------------------------------- */

/* The bundle of a `create` call (--bundle X, --bundle=X, -b X; default "."), or NULL. */
static const char *create_bundle(int argc, char **argv) {
  int create = 0;
  const char *bundle = ".";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "create") == 0) create = 1;
    else if ((strcmp(a, "--bundle") == 0 || strcmp(a, "-b") == 0) && i + 1 < argc) bundle = argv[++i];
    else if (strncmp(a, "--bundle=", 9) == 0) bundle = a + 9;
  }
  return create ? bundle : NULL;
}

/* Points the libnetwork-setkey hook of <bundle>/config.json at this program. */
static void rewrite_hook(const char *bundle) {
  char path[4096], tmp[4200];
  if (snprintf(path, sizeof path, "%s/config.json", bundle) >= (int)sizeof path) return;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  size_t len = 0;
  char *cfg = fstat(fd, &st) == 0 ? read_all(fd, MAX_CONFIG, &len) : NULL;
  close(fd);
  if (!cfg) return;
  /* "path":"/proc/<digits>/exe","args":["libnetwork-setkey" (Go's compact encoding) */
  const char *tail = "/exe\",\"args\":[\"libnetwork-setkey\"";
  char *start = strstr(cfg, "\"path\":\"/proc/");
  while (start) {
    char *d = start + strlen("\"path\":\"/proc/");
    char *e = d;
    while (*e >= '0' && *e <= '9') e++;
    if (e > d && strncmp(e, tail, strlen(tail)) == 0) break;
    start = strstr(start + 1, "\"path\":\"/proc/");
  }
  if (!start) { free(cfg); return; }
  char *after = strstr(start, "\",\"args\"") + 1; /* the closing quote of the path, kept */
  if (snprintf(tmp, sizeof tmp, "%s.kiln-oci", path) >= (int)sizeof tmp) { free(cfg); return; }
  int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
  if (out < 0) { free(cfg); return; }
  const char *head = "\"path\":\"" SELF;
  size_t pre = (size_t)(start - cfg), rest = len - (size_t)(after - cfg);
  int ok = write(out, cfg, pre) == (ssize_t)pre && write(out, head, strlen(head)) == (ssize_t)strlen(head) &&
           write(out, after - 1, rest + 1) == (ssize_t)(rest + 1);
  ok = close(out) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) unlink(tmp);
  free(cfg);
}

/* The running shared shim's address for a `start` in `ns`, or NULL. */
static char *shared_shim(const char *ns) {
  static char addr[256];
  char path[512];
  const char *dir = getenv("KILN_SHIM_GROUPS") ? getenv("KILN_SHIM_GROUPS") : SHIM_GROUPS;
  if (!ns[0] || strchr(ns, '/') || ns[0] == '.') return NULL;
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, ns) >= sizeof path) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  ssize_t n = read(fd, addr, sizeof addr - 1);
  close(fd);
  if (n <= 0) return NULL;
  addr[n] = 0;
  addr[strcspn(addr, "\n")] = 0;
  if (strncmp(addr, "unix://", 7) != 0) return NULL;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen(addr + 7) >= sizeof sa.sun_path) return NULL;
  strcpy(sa.sun_path, addr + 7);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return NULL;
  int ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(s);
  return ok ? addr : NULL;
}

/* As containerd-shim-runc-v2: `start` in a namespace with a shared shim answers its address
 * (the bundle's "address" file, as the runc shim writes it, and stdout); else the real shim. */
static int shim_front(int argc, char **argv) {
  const char *ns = "";
  for (int i = 1; i + 1 < argc; i++) if (strcmp(argv[i], "-namespace") == 0) ns = argv[i + 1];
  char *addr = argc >= 2 && strcmp(argv[argc - 1], "start") == 0 ? shared_shim(ns) : NULL;
  if (addr) {
    char buf[4096];
    while (read(0, buf, sizeof buf) > 0) {} /* containerd's runtime options: the running shim has its own */
    int fd = open("address.kiln-tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(addr);
    if (fd >= 0 && write(fd, addr, len) == (ssize_t)len && close(fd) == 0 && rename("address.kiln-tmp", "address") == 0 &&
        write(1, addr, len) == (ssize_t)len) return 0;
    if (fd >= 0) unlink("address.kiln-tmp");
    fprintf(stderr, "kiln-oci: shared shim: writing the address failed (%s); starting a shim of its own\n", strerror(errno));
  }
  const char *real = getenv("KILN_SHIM_REAL") ? getenv("KILN_SHIM_REAL") : REAL_SHIM;
  argv[0] = (char *)real;
  execv(real, argv);
  fprintf(stderr, "kiln-oci: exec %s: %s\n", real, strerror(errno));
  return 127;
}

int main(int argc, char **argv) {
  const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  if (strcmp(base, "containerd-shim-runc-v2") == 0) return shim_front(argc, argv);
  if (strcmp(base, "libnetwork-setkey") == 0) return setkey(argc, argv, 1);
  if (argc >= 2 && strcmp(argv[1], "libnetwork-setkey") == 0) return setkey(argc, argv, 2);
  const char *bundle = create_bundle(argc, argv);
  if (bundle) rewrite_hook(bundle);
  /* KILN_OCI_CRUN: another crun, for tests only */
  const char *crun = getenv("KILN_OCI_CRUN") ? getenv("KILN_OCI_CRUN") : CRUN;
  argv[0] = "crun";
  execv(crun, argv);
  fprintf(stderr, "kiln-oci: exec %s: %s\n", crun, strerror(errno));
  return 127;
}
