#!/usr/bin/env python3
"""Print, as JSON, the byte ranges of a file that are resident in the page cache (mincore)."""
import ctypes
import json
import mmap
import os
import sys

path = sys.argv[1]
fd = os.open(path, os.O_RDONLY)
size = os.fstat(fd).st_size
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
page = os.sysconf("SC_PAGE_SIZE")
n = (size + page - 1) // page
vec = (ctypes.c_ubyte * n)()
if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) != 0:
    sys.exit("mincore failed: errno %d" % ctypes.get_errno())
ranges, start = [], None
for i in range(n):
    if vec[i] & 1:
        if start is None:
            start = i
    elif start is not None:
        ranges.append([start * page, i * page])
        start = None
if start is not None:
    ranges.append([start * page, min(n * page, size)])
print(json.dumps(ranges))
