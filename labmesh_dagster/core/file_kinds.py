"""What a directory entry is, named as people know it, for the messages about entries labmesh never reads.

Only regular files are data to labmesh (the local store lists nothing else);
`labmesh extract` and `labmesh status` name what else they met.
"""

from __future__ import annotations

import stat


def file_kind(mode: int) -> str:
    """What an entry of this ``st_mode`` is: regular file, folder, symlink, FIFO (named pipe), socket, device."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"
