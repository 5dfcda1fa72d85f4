"""The terminal the programs write to (sys/kern/tty.c, much reduced): what reaches it is the run's output.

Writes are copied in and appended to the kernel's console record, which `trapscope run` prints; reads see
end-of-file (no one types into a recorded run).
"""

from __future__ import annotations

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.kern_descrip import FIONREAD
from sim.kern.null import D_TTY, Cdevsw, null_ioctl, nullop_read
from sim.kern.proc import Thread
from sim.kern.uio import Uio, uiomove

TTY_OUTPUT_LIMIT = 1 << 20  # keep at most 1 MiB of a run's output


@kfunc
def ttydev_write(dev: Cdevsw, uio: Uio, flags: int) -> int:
    data = bytearray(uio.uio_resid)
    error = uiomove(data, len(data), uio)
    console = pcpu.kernel.console
    if sum(map(len, console)) < TTY_OUTPUT_LIMIT:
        console.append(data.decode("utf-8", "replace"))
    return error


def ttydev_ioctl(dev: Cdevsw, com: int, td: Thread) -> tuple[int, int | None]:
    if com == FIONREAD:
        return 0, 0
    return null_ioctl(dev, com, td)


console_cdevsw = Cdevsw("console", nullop_read, ttydev_write, ttydev_ioctl, D_TTY)
