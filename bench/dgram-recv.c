// dgram-recv: the datagram benchmark's C baseline — what postbox --dgram does,
// as plain C: bind PATH, SO_PASSCRED, a blocking recvmsg loop reading each
// datagram with its SCM_CREDENTIALS, one line `dgram[pid=P,uid=U,gid=G]: msg`
// per datagram on stdout (buffered, written before recvmsg would block).
//   dgram-recv PATH
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char out[1 << 20];
static size_t used;

static void flush(void) {
  for (size_t off = 0; off < used;) {
    ssize_t w = write(1, out + off, used - off);
    if (w < 0) { if (errno == EINTR) continue; _exit(1); }
    off += (size_t)w;
  }
  used = 0;
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: dgram-recv PATH\n"); return 2; }
  int s = socket(AF_UNIX, SOCK_DGRAM, 0), one = 1;
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one)) { perror("dgram-recv"); return 1; }
  static char data[65536];
  union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(struct ucred))]; } ctl;
  for (;;) {
    struct iovec iov = { data, sizeof data };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof ctl };
    ssize_t n = recvmsg(s, &m, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) { flush(); n = recvmsg(s, &m, 0); }
    if (n < 0) { if (errno == EINTR) continue; perror("recvmsg"); return 1; }
    struct ucred c = { 0, 0, 0 };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS) memcpy(&c, CMSG_DATA(h), sizeof c);
    if (n > 0 && data[n - 1] == '\n') n--;
    if (used + (size_t)n + 64 > sizeof out) flush();
    used += (size_t)sprintf(out + used, "dgram[pid=%d,uid=%u,gid=%u]: ", c.pid, c.uid, c.gid);
    memcpy(out + used, data, (size_t)n);
    used += (size_t)n;
    out[used++] = '\n';
  }
}
