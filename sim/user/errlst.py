"""strerror(3)'s text for every errno FreeBSD 11 defines (lib/libc/gen/errlst.c, sys_errlist; ELAST is 96)."""

from __future__ import annotations

SYS_ERRLIST = (
    "No error: 0",
    "Operation not permitted",  # EPERM
    "No such file or directory",  # ENOENT
    "No such process",  # ESRCH
    "Interrupted system call",  # EINTR
    "Input/output error",  # EIO
    "Device not configured",  # ENXIO
    "Argument list too long",  # E2BIG
    "Exec format error",  # ENOEXEC
    "Bad file descriptor",  # EBADF
    "No child processes",  # ECHILD
    "Resource deadlock avoided",  # EDEADLK
    "Cannot allocate memory",  # ENOMEM
    "Permission denied",  # EACCES
    "Bad address",  # EFAULT
    "Block device required",  # ENOTBLK
    "Device busy",  # EBUSY
    "File exists",  # EEXIST
    "Cross-device link",  # EXDEV
    "Operation not supported by device",  # ENODEV
    "Not a directory",  # ENOTDIR
    "Is a directory",  # EISDIR
    "Invalid argument",  # EINVAL
    "Too many open files in system",  # ENFILE
    "Too many open files",  # EMFILE
    "Inappropriate ioctl for device",  # ENOTTY
    "Text file busy",  # ETXTBSY
    "File too large",  # EFBIG
    "No space left on device",  # ENOSPC
    "Illegal seek",  # ESPIPE
    "Read-only file system",  # EROFS
    "Too many links",  # EMLINK
    "Broken pipe",  # EPIPE
    "Numerical argument out of domain",  # EDOM
    "Result too large",  # ERANGE
    "Resource temporarily unavailable",  # EAGAIN
    "Operation now in progress",  # EINPROGRESS
    "Operation already in progress",  # EALREADY
    "Socket operation on non-socket",  # ENOTSOCK
    "Destination address required",  # EDESTADDRREQ
    "Message too long",  # EMSGSIZE
    "Protocol wrong type for socket",  # EPROTOTYPE
    "Protocol not available",  # ENOPROTOOPT
    "Protocol not supported",  # EPROTONOSUPPORT
    "Socket type not supported",  # ESOCKTNOSUPPORT
    "Operation not supported",  # EOPNOTSUPP
    "Protocol family not supported",  # EPFNOSUPPORT
    "Address family not supported by protocol family",  # EAFNOSUPPORT
    "Address already in use",  # EADDRINUSE
    "Can't assign requested address",  # EADDRNOTAVAIL
    "Network is down",  # ENETDOWN
    "Network is unreachable",  # ENETUNREACH
    "Network dropped connection on reset",  # ENETRESET
    "Software caused connection abort",  # ECONNABORTED
    "Connection reset by peer",  # ECONNRESET
    "No buffer space available",  # ENOBUFS
    "Socket is already connected",  # EISCONN
    "Socket is not connected",  # ENOTCONN
    "Can't send after socket shutdown",  # ESHUTDOWN
    "Too many references: can't splice",  # ETOOMANYREFS
    "Operation timed out",  # ETIMEDOUT
    "Connection refused",  # ECONNREFUSED
    "Too many levels of symbolic links",  # ELOOP
    "File name too long",  # ENAMETOOLONG
    "Host is down",  # EHOSTDOWN
    "No route to host",  # EHOSTUNREACH
    "Directory not empty",  # ENOTEMPTY
    "Too many processes",  # EPROCLIM
    "Too many users",  # EUSERS
    "Disc quota exceeded",  # EDQUOT
    "Stale NFS file handle",  # ESTALE
    "Too many levels of remote in path",  # EREMOTE
    "RPC struct is bad",  # EBADRPC
    "RPC version wrong",  # ERPCMISMATCH
    "RPC prog. not avail",  # EPROGUNAVAIL
    "Program version wrong",  # EPROGMISMATCH
    "Bad procedure for program",  # EPROCUNAVAIL
    "No locks available",  # ENOLCK
    "Function not implemented",  # ENOSYS
    "Inappropriate file type or format",  # EFTYPE
    "Authentication error",  # EAUTH
    "Need authenticator",  # ENEEDAUTH
    "Identifier removed",  # EIDRM
    "No message of desired type",  # ENOMSG
    "Value too large to be stored in data type",  # EOVERFLOW
    "Operation canceled",  # ECANCELED
    "Illegal byte sequence",  # EILSEQ
    "Attribute not found",  # ENOATTR
    "Programming error",  # EDOOFUS
    "Bad message",  # EBADMSG
    "Multihop attempted",  # EMULTIHOP
    "Link has been severed",  # ENOLINK
    "Protocol error",  # EPROTO
    "Capabilities insufficient",  # ENOTCAPABLE
    "Not permitted in capability mode",  # ECAPMODE
    "State not recoverable",  # ENOTRECOVERABLE
    "Previous owner died",  # EOWNERDEAD
)
ELAST = len(SYS_ERRLIST) - 1


def strerror(error: int) -> str:
    """strerror(3): the text, or "Unknown error: N" outside 0..ELAST, as libc words it."""
    return SYS_ERRLIST[error] if 0 <= error <= ELAST else f"Unknown error: {error}"
