"""errno values (sys/sys/errno.h) and the kernel-internal pseudo-errors."""

EPERM = 1
ENOENT = 2
ESRCH = 3
EINTR = 4
EIO = 5
ENXIO = 6
E2BIG = 7
ENOEXEC = 8
EBADF = 9
ECHILD = 10
EDEADLK = 11
ENOMEM = 12
EACCES = 13
EFAULT = 14
EBUSY = 16
EEXIST = 17
ENODEV = 19
ENOTDIR = 20
EISDIR = 21
EINVAL = 22
ENFILE = 23
EMFILE = 24
ENOTTY = 25
EFBIG = 27
ENOSPC = 28
ESPIPE = 29
EROFS = 30
EPIPE = 32
EDOM = 33
ERANGE = 34
EAGAIN = 35
EINPROGRESS = 36
EALREADY = 37
ENOTSOCK = 38
EMSGSIZE = 40
ENOPROTOOPT = 42
EPROTONOSUPPORT = 43
EOPNOTSUPP = 45
EAFNOSUPPORT = 47
ENOBUFS = 55
ENOTCONN = 57
ETIMEDOUT = 60
ENAMETOOLONG = 63
ENOSYS = 78
ECANCELED = 85
ENOTCAPABLE = 93
ECAPMODE = 94

# Never seen by user space: they tell the syscall return path what to do (sys/sys/errno.h, _KERNEL).
ERESTART = -1  # re-execute the system call
EJUSTRETURN = -2  # leave the registers alone (sigreturn, setcontext)
ENOIOCTL = -3  # an ioctl the object does not handle (becomes ENOTTY)

NAMES = {value: name for name, value in globals().items() if name.isupper() and isinstance(value, int)}
