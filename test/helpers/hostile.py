#!/usr/bin/env python3
"""What a hostile second user does in a shared directory (run under setpriv).

  hostile.py exchange A B SECONDS   swap A and B (renameat2 RENAME_EXCHANGE) in a loop
  hostile.py plant PREFIX SUFFIX TARGET FIRST COUNT
                                     symlinks PREFIX<n>SUFFIX -> TARGET for n in FIRST..FIRST+COUNT
  hostile.py mq NAME MODE           create a message queue owned by us, with exactly MODE
"""
import ctypes, os, sys, time

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2

cmd = sys.argv[1]
if cmd == "exchange":
    a, b, secs = sys.argv[2].encode(), sys.argv[3].encode(), float(sys.argv[4])
    libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    end = time.monotonic() + secs
    print("ready", flush=True)
    n = 0
    while time.monotonic() < end:
        if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
            sys.exit(f"renameat2: {os.strerror(ctypes.get_errno())}")
        n += 1
    print(f"exchanges {n}")
elif cmd == "plant":
    prefix, suffix, target, first, count = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    for n in range(first, first + count):
        try:
            os.symlink(target, f"{prefix}{n}{suffix}")
        except FileExistsError:
            pass
elif cmd == "mq":
    name, mode = sys.argv[2].encode(), int(sys.argv[3], 8)
    os.umask(0)
    libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    fd = libc.mq_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode, None)
    if fd < 0:
        sys.exit(f"mq_open: {os.strerror(ctypes.get_errno())}")
else:
    sys.exit(f"unknown command {cmd}")
