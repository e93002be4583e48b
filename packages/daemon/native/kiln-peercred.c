/*
 * kiln-peercred: prints "pid uid gid" of the process at the other end of the unix socket on
 * fd 3 (SO_PEERCRED). kilnd runs it once per API connection (audit/peer.ts) to name the
 * caller; a static binary starts in about a millisecond where perl took 10-30 ms, and every
 * connection's first request waits for the answer.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/socket.h>

int main(void) {
  struct ucred c;
  socklen_t n = sizeof c;
  if (getsockopt(3, SOL_SOCKET, SO_PEERCRED, &c, &n) != 0 || n != sizeof c) {
    perror("getsockopt SO_PEERCRED");
    return 1;
  }
  printf("%d %d %d\n", (int)c.pid, (int)c.uid, (int)c.gid);
  return 0;
}
