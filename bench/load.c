// load: the benchmark's load generator (C, so that it is never the bottleneck).
//   load stream  SOCK N LEN       one connection, N lines of LEN bytes (with \n)
//   load oneshot SOCK N CONC      N connect-post-close clients, CONC at a time
//   load streams SOCK N CONC LEN  CONC connections open at once (from 4 processes), N lines of
//                                 LEN bytes in all, 64 lines a write, round robin
//   load idle    SOCK N           N connections held open, silent; prints "ready" once all are
//                                 connected, closes them when its stdin closes
//   load fifo    PATH N LEN       N lines of LEN bytes into a FIFO
//   load mq      NAME N LEN       N messages of LEN bytes (blocking when full)
//   load sig     PID N SIG        N sigqueue() payloads of signal SIG
//   load dgram   SOCK N LEN       N datagrams of LEN bytes from one blocking sender
//   load dgram   SOCK N LEN K     the same from K senders at once (N in all)
//   load lat-<stream|fifo|mq|sig> TARGET N GAP_US [SIG]
//                                 N messages carrying the CLOCK_REALTIME µs they were sent
//                                 (sig: µs mod 2^31), one every GAP_US
// SOCK starting with '@' is an abstract name. Exit 0 once everything was handed over.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(1); }

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void pause_us(long us) {
  struct timespec t = { us / 1000000, (us % 1000000) * 1000 };
  while (nanosleep(&t, &t) && errno == EINTR) {}
}

static socklen_t unix_address(const char *path, struct sockaddr_un *a) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (path[0] == '@') {
    strncpy(a->sun_path + 1, path + 1, sizeof a->sun_path - 2);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path);
  }
  strncpy(a->sun_path, path, sizeof a->sun_path - 1);
  return sizeof *a;
}

/** N datagrams of LEN bytes from one blocking socket: sendto waits while the receiver's queue is full. */
static void datagrams(const char *path, long n, int len) {
  struct sockaddr_un a;
  socklen_t alen = unix_address(path, &a);
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (s < 0) die("socket");
  char b[65536];
  memset(b, 'x', sizeof b);
  for (long i = 0; i < n; i++)
    while (sendto(s, b, (size_t)len, 0, (struct sockaddr *)&a, alen) < 0) { if (errno != EINTR) die("sendto"); }
  close(s);
}

static int connect_to(const char *path) {
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  socklen_t len;
  if (path[0] == '@') {
    strncpy(a.sun_path + 1, path + 1, sizeof a.sun_path - 2);
    len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
  } else {
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    len = sizeof a;
  }
  for (int tries = 0;; tries++) {
    if (connect(s, (struct sockaddr *)&a, len) == 0) return s;
    if ((errno == EAGAIN || errno == ECONNREFUSED) && tries < 10000) { pause_us(200); continue; }
    die("connect");
  }
}

static void write_all(int fd, const char *b, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0) { if (errno == EINTR) continue; die("write"); }
    b += w;
    n -= (size_t)w;
  }
}

/** N lines of LEN bytes, written in 64 KiB batches. */
static void lines(int fd, long n, int len) {
  static char buf[1 << 16];
  int per = (int)(sizeof buf / (size_t)len);
  for (int j = 0; j < per; j++) { memset(buf + j * len, 'x', (size_t)len - 1); buf[j * len + len - 1] = '\n'; }
  while (n > 0) {
    long m = n < per ? n : per;
    write_all(fd, buf, (size_t)(m * len));
    n -= m;
  }
}

static void mq_put(mqd_t q, const char *b, size_t n) {
  if (mq_send(q, b, n, 0)) die("mq_send");
}

static void sig_put(pid_t pid, int sig, int v) {
  union sigval sv = { .sival_int = v };
  while (sigqueue(pid, sig, sv)) { if (errno == EAGAIN) { pause_us(100); continue; } die("sigqueue"); }
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: see the comment at the top of load.c\n"); return 2; }
  const char *mode = argv[1], *target = argv[2];
  long n = atol(argv[3]);
  int arg = argc > 4 ? atoi(argv[4]) : 0;
  if (!strcmp(mode, "stream")) { int s = connect_to(target); lines(s, n, arg); shutdown(s, SHUT_WR); close(s); }
  else if (!strcmp(mode, "streams")) {
    int len = argc > 5 ? atoi(argv[5]) : 32, procs = arg < 4 ? arg : 4;
    static char buf[64 * 8192];
    if (len < 1 || len > 8192) { fprintf(stderr, "LEN 1..8192\n"); return 2; }
    for (int j = 0; j < 64; j++) { memset(buf + j * len, 'x', (size_t)len - 1); buf[j * len + len - 1] = '\n'; }
    for (int k = 0; k < procs; k++) if (fork() == 0) {
      int mine = arg / procs + (k < arg % procs);
      long each = n / arg;
      int *fd = malloc(sizeof(int) * (size_t)mine);
      for (int j = 0; j < mine; j++) fd[j] = connect_to(target);
      for (long done = 0; done < each; done += 64) {
        long m = each - done < 64 ? each - done : 64;
        for (int j = 0; j < mine; j++) write_all(fd[j], buf, (size_t)(m * len));
      }
      for (int j = 0; j < mine; j++) close(fd[j]);
      _exit(0);
    }
    int st, bad = 0;
    while (wait(&st) > 0) bad |= !WIFEXITED(st) || WEXITSTATUS(st);
    return bad;
  }
  else if (!strcmp(mode, "idle")) {
    int *fd = malloc(sizeof(int) * (size_t)n);
    for (long i = 0; i < n; i++) fd[i] = connect_to(target);
    printf("ready\n");
    fflush(stdout);
    char b[64];
    while (read(0, b, sizeof b) > 0) {}
    for (long i = 0; i < n; i++) close(fd[i]);
  }
  else if (!strcmp(mode, "fifo")) { int f = open(target, O_WRONLY); if (f < 0) die("open"); lines(f, n, arg); close(f); }
  else if (!strcmp(mode, "oneshot")) {
    for (int k = 0; k < arg; k++) if (fork() == 0) {
      char b[64];
      for (long i = k; i < n; i += arg) { int s = connect_to(target); int m = snprintf(b, sizeof b, "msg %ld\n", i); write_all(s, b, (size_t)m); close(s); }
      _exit(0);
    }
    int st, bad = 0;
    while (wait(&st) > 0) bad |= !WIFEXITED(st) || WEXITSTATUS(st);
    return bad;
  }
  else if (!strcmp(mode, "mq")) {
    mqd_t q = mq_open(target, O_WRONLY); if (q < 0) die("mq_open");
    char b[8192]; memset(b, 'x', sizeof b);
    for (long i = 0; i < n; i++) mq_put(q, b, (size_t)arg);
  }
  else if (!strcmp(mode, "dgram")) {
    int k = argc > 5 ? atoi(argv[5]) : 1;
    if (k <= 1) { datagrams(target, n, arg); return 0; }
    for (int j = 0; j < k; j++) if (fork() == 0) { datagrams(target, n / k + (j < n % k), arg); _exit(0); }
    int st, bad = 0;
    while (wait(&st) > 0) bad |= !WIFEXITED(st) || WEXITSTATUS(st);
    return bad;
  }
  else if (!strcmp(mode, "sig")) { for (long i = 1; i <= n; i++) sig_put(atoi(target), arg, (int)i); } /* arg = SIG */
  else if (!strncmp(mode, "lat-", 4)) {
    const char *kind = mode + 4;
    int fd = -1, sig = argc > 5 ? atoi(argv[5]) : 0;
    mqd_t q = -1;
    if (!strcmp(kind, "stream")) fd = connect_to(target);
    else if (!strcmp(kind, "fifo")) { fd = open(target, O_WRONLY); if (fd < 0) die("open"); }
    else if (!strcmp(kind, "mq")) { q = mq_open(target, O_WRONLY); if (q < 0) die("mq_open"); }
    for (long i = 0; i < n; i++) {
      char b[32];
      long long t = now_us();
      int m = snprintf(b, sizeof b, "%lld\n", t);
      if (fd >= 0) write_all(fd, b, (size_t)m);
      else if (q >= 0) mq_put(q, b, (size_t)m - 1);
      else sig_put(atoi(target), sig, (int)(t & 0x7fffffff));
      pause_us(arg);
    }
    if (fd >= 0) { shutdown(fd, SHUT_WR); close(fd); }
  }
  else { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
  return 0;
}
