"""A case-insensitive, case-preserving folder, as a Windows or macOS share (SMB) is: a stand-in
for where the kernel offers none (ext4 casefold needs CONFIG_UNICODE, XFS's ascii-ci is gone).

    python tests/casefold_share.py BACKING MOUNTPOINT     (as root, or with fusermount3)

A FUSE passthrough over BACKING that finds each name of a path as Samba does for its clients:
the entry spelt so if there is one, else the one that folds to the same case. A name is created
as given unless one folding alike is there, and then it *is* that one: `open(O_EXCL)` says it
exists, a rename onto it replaces it. Nothing else differs from the folder below.
"""

from __future__ import annotations

import errno
import os
import sys

from mfusepy import FUSE, FuseOSError, Operations


class CaseFoldingFolder(Operations):
    use_ns = True

    def __init__(self, root: str):
        self.root = os.path.realpath(root)

    def _real(self, path: str) -> str:
        real = self.root
        for part in (p for p in path.split("/") if p):
            if not os.path.lexists(os.path.join(real, part)):
                try:
                    part = next((n for n in os.listdir(real) if n.casefold() == part.casefold()), part)
                except (FileNotFoundError, NotADirectoryError):
                    pass
            real = os.path.join(real, part)
        return real

    def getattr(self, path, fh=None):
        st = os.fstat(fh) if fh is not None else os.lstat(self._real(path))
        attrs = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_size", "st_uid", "st_gid", "st_ino")}
        return {**attrs, "st_atime": st.st_atime_ns, "st_mtime": st.st_mtime_ns, "st_ctime": st.st_ctime_ns}

    def readdir(self, path, fh):
        return [".", "..", *os.listdir(self._real(path))]

    def access(self, path, amode):
        if not os.access(self._real(path), amode):
            raise FuseOSError(errno.EACCES)
        return 0

    def create(self, path, mode, fi=None):
        return os.open(self._real(path), os.O_RDWR | os.O_CREAT, mode)

    def open(self, path, flags):
        return os.open(self._real(path), flags & ~(os.O_CREAT | os.O_EXCL))

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._real(path), length)
        return 0

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        os.fsync(fh)
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0

    def rename(self, old, new):
        os.rename(self._real(old), self._real(new))
        return 0

    def link(self, target, source):
        os.link(self._real(source), self._real(target))
        return 0

    def symlink(self, target, source):
        os.symlink(source, self._real(target))
        return 0

    def readlink(self, path):
        return os.readlink(self._real(path))

    def unlink(self, path):
        os.unlink(self._real(path))
        return 0

    def mkdir(self, path, mode):
        os.mkdir(self._real(path), mode)
        return 0

    def rmdir(self, path):
        os.rmdir(self._real(path))
        return 0

    def chmod(self, path, mode):
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path, uid, gid):
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path, times=None):
        os.utime(self._real(path), ns=times) if times else os.utime(self._real(path))
        return 0

    def statfs(self, path):
        st = os.statvfs(self.root)
        return {k: getattr(st, k) for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                                            "f_ffree", "f_favail", "f_flag", "f_namemax")}


if __name__ == "__main__":
    # No kernel caching of names: a name looked up in one case must not outlive a rename in another.
    FUSE(CaseFoldingFolder(sys.argv[1]), sys.argv[2], foreground=True, nothreads=True, entry_timeout=0,
         attr_timeout=0, negative_timeout=0)
