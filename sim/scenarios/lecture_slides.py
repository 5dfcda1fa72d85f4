"""The lecture's other mechanisms, one scenario each, in the slides' order (sim/scenarios/outline.py lists the
slides): the five steps of a system call, the table syscalls.master generates, the hooks of syscallenter and
syscallret switched on one at a time, getauid's three answers, credentials and capability mode, demand paging of
a file, aio_write's shared buffer, the trap vector, zeroing before reuse, dd's variations, copy-on-write,
superpages, fork through vm_map and vm_object, the merged VM/buffer cache, pipe direct writes, and the IPC
lab.

Each is only inputs and words (see registry.py): what it shows is the recorded run, and its claim is a test over
the run's log (tests/test_scenario_claims.py).
"""

from __future__ import annotations

from sim.kern.errno import ECAPMODE, ENOSYS, EPERM
from sim.kern.kernel import KernelConfig
from sim.scenarios.registry import DD_READ, Scenario, register
from sim.scenarios.stops import (
    Find,
    Stop,
    cerror,
    entering,
    fault,
    first,
    page_fault_trap,
    run_end,
    syscall,
    sysret_error,
)

FIRST_READ = syscall("read")


def _before(kind: str, name: str, find: Find) -> Find:
    return Find(kind, name, before=find)


# ---------------------------------------------------------------- slide 4: System calls

register(
    Scenario(
        slug="syscall-five-steps",
        title="The five steps of a system call: read()",
        summary=(
            "read() from /dev/zero into a user buffer, step by step as the slide lists them: the stub's syscall "
            "instruction traps; the arguments are fetched from the saved registers; sys_read does the work; "
            "copyout puts the data in the caller's buffer; sysretq returns to the next user instruction."
        ),
        command="read-kernel-pointer",
        lecture_point=(
            'Slide "System calls": a system call is a trap with function-call semantics, in five steps: trap, '
            "arguments in, the service, results out, return from the trap."
        ),
        question="Which of the five steps crosses between rings, and which copy data across the boundary?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System calls",
        stops=(
            Stop("trap", _before("insn", "syscall", FIRST_READ), "cpu", "1. The stub's syscall traps into ring 0"),
            Stop(
                "arguments",
                _before("hook", "sv_fetch_syscall_args", FIRST_READ),
                "cpu",
                "2. The arguments are fetched from the trapframe",
            ),
            Stop("service", FIRST_READ, "source", "3. The kernel implements the service: sys_read"),
            Stop("copyout", first("enter", "copyout", after=FIRST_READ), "source", "4. copyout puts the data out"),
            Stop("return", first("insn", "sysretq", after=FIRST_READ), "cpu", "5. sysretq: back to the next insn"),
        ),
    )
)

# ---------------------------------------------------------------- slide 5: synchrony

register(
    Scenario(
        slug="read-synchronous",
        title="read(): on return, the data is in the buffer",
        summary=(
            "read() behaves like a synchronous C function: the kernel copies the data out into the caller's "
            "buffer before it returns, so the next user instruction can use it."
        ),
        command="read-kernel-pointer",
        lecture_point=(
            'Slide "System-call synchrony": the caller regains control when the work is complete; read() '
            "returns with the data in its buffer."
        ),
        question="Which comes first in the log: the copyout into the buffer, or the return to user mode?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System-call synchrony",
        stops=(
            Stop("read", FIRST_READ, "source", "read() enters sys_read"),
            Stop("copyout", first("mem", "copyout", after=FIRST_READ), "narrative", "The data lands in the buffer"),
            Stop("returns", first("insn", "sysretq", after=FIRST_READ), "cpu", "Only then does read() return"),
        ),
    )
)

# ---------------------------------------------------------------- slide 6: asynchrony

PROGRAM_MMAP = syscall("mmap")  # the program's mapping of the file (recording starts at main: rtld's come before)

register(
    Scenario(
        slug="mmap-file",
        title="mmap() maps a file but loads nothing",
        summary=(
            "The program maps a three-page file that is on the disk but in no page of memory, and reads a byte of "
            "each page. mmap() only inserts a map entry backed by the file's vm_object; each first touch traps, "
            "and vm_fault asks the vnode pager, which sleeps on the disk for the page: demand paging."
        ),
        command="mmap-file",
        lecture_point=(
            'Slide "System-call asynchrony": mmap() maps a file but does not load data; the caller traps on '
            "access, triggering I/O (demand paging)."
        ),
        question="How many disk reads did mmap() itself start, and how many did the loads?",
        views=("narrative", "timeline", "vm", "latency"),
        slide="System-call asynchrony",
        stops=(
            Stop("mmap", PROGRAM_MMAP, "vm", "mmap() inserts a map entry: no I/O"),
            Stop("first-touch", page_fault_trap(user=True, nth=1, after=PROGRAM_MMAP), "cpu", "A load traps"),
            Stop(
                "disk-read",
                first("proc", "sleep", where=lambda wait: getattr(wait, "path", None), after=PROGRAM_MMAP),
                "timeline",
                "The vnode pager sleeps on the disk",
            ),  # fmt: skip
            Stop("hard-fault", fault("hard"), "vm", "The page is in: a hard fault"),
        ),
    )
)

register(
    Scenario(
        slug="aio-reuse-too-early",
        title="aio_write(): reusing the buffer too early",
        summary=(
            "aio_write() queues a 64 KiB write of 'A's, and the program at once overwrites its buffer with 'B's. "
            "The AIO daemon copies the buffer one file-system block at a time, waiting for the disk (O_SYNC) in "
            "between: the first block is copied before the overwrite, the second after it. The file holds both."
        ),
        command="aio-reuse",
        lecture_point=(
            'Slide "System-call asynchrony": aio_write() has shared semantics: the caller must wait for '
            "aio_return() before reusing its buffer."
        ),
        question="Which thread copied the second block, and what did the buffer hold by then?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System-call asynchrony",
        stops=(
            Stop("aio-write", syscall("aio_write"), "source", "aio_write() queues the job"),
            Stop(
                "overwrite",
                first("user", "memset", where=lambda a: a.byte == ord("B")),
                "cpu",
                "The program overwrites the buffer: too early",
            ),  # fmt: skip
            Stop("aio-return", syscall("aio_return"), "cpu", "aio_return(): the job is done"),
            Stop("end", run_end(), "timeline", "The file holds 'A's and 'B's"),
        ),
    )
)

# ---------------------------------------------------------------- slide 7: invocation

register(
    Scenario(
        slug="libc-stub",
        title="libc's system-call stub, instruction by instruction",
        summary=(
            "getpid() in C is a call to a libc stub generated from syscalls.master: mov $SYS_getpid,%eax puts "
            "the call's number in %eax, movq %rcx,%r10 frees %rcx (syscall overwrites it), syscall traps, and on "
            "return jb cerror tests the carry flag: clear, so ret hands %rax back as the result."
        ),
        command="getpid",
        lecture_point=(
            'Slide "System-call invocation": libc system-call stubs provide linkable symbols; system calls look '
            "like library functions."
        ),
        question="What would the stub do if the carry flag were set on return?",
        views=("narrative", "cpu", "source"),
        slide="System-call invocation",
        stops=(
            Stop("call", first("user", "call getpid"), "cpu", "The C call: into libc's getpid stub"),
            Stop("number", first("user", "mov $SYS_getpid,%eax"), "cpu", "The number from syscalls.master"),
            Stop("trap", first("insn", "syscall"), "cpu", "syscall: into the kernel"),
            Stop("carry", first("user", "jb cerror"), "cpu", "Back: carry clear, so no cerror"),
            Stop("ret", first("user", "ret", after=first("user", "jb cerror")), "cpu", "ret: %rax is the pid"),
        ),
    )
)

register(
    Scenario(
        slug="trap-vector",
        title="Two ways in: the syscall instruction and the IDT",
        summary=(
            "getpid() enters through the syscall instruction, which jumps to the address in MSR_LSTAR "
            "(Xfast_syscall); the first store to a new page raises a page fault, which the CPU delivers through "
            "the IDT's vector 14 to Xpage and trap(). Both save a trapframe and reach machine-independent code."
        ),
        command="trapvec",
        lecture_point=(
            'Slide "System-call invocation": a machine-dependent trap vector leads to the machine-independent '
            "system-call (or trap) handling."
        ),
        question="Which entry code runs for each, and which one builds the trapframe in hardware?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System-call invocation",
        stops=(
            Stop("syscall", first("enter", "Xfast_syscall"), "cpu", "syscall: %rip from MSR_LSTAR, Xfast_syscall"),
            Stop("amd64-syscall", first("enter", "amd64_syscall"), "source", "Into machine-independent code"),
            Stop("page-fault", page_fault_trap(user=True), "cpu", "A store to a new page: #PF through the IDT"),
            Stop("trap", first("enter", "trap", after=page_fault_trap(user=True)), "source", "Xpage calls trap()"),
        ),
    )
)

# ---------------------------------------------------------------- slide 8: syscalls.master

register(
    Scenario(
        slug="syscalls-master",
        title="syscalls.master: the number, the table, and nosys",
        summary=(
            "The stub puts the call's number from syscalls.master in %eax; syscallenter looks it up in sysent, "
            "the table generated from the same file, and calls its handler. syscall(999), a number the file "
            "leaves empty, reaches nosys(): SIGSYS (ignored here) and ENOSYS."
        ),
        command="nosys -i",
        lecture_point=(
            "Slide \"System-call table: syscalls.master\": one file generates the kernel's table and libc's stubs, "
            "as RPC stub generation does."
        ),
        question="Where does the kernel find the handler for the number in %rax?",
        views=("narrative", "cpu", "source"),
        slide="System-call table: syscalls.master",
        stops=(
            Stop(
                "number",
                first("user", where=lambda d: getattr(d, "code", None) is not None),
                "cpu",
                "The stub: mov $SYS_sigaction,%eax",
            ),  # fmt: skip
            Stop("lookup", first("hook", "sv_fetch_syscall_args"), "cpu", "sysent[code]: the table's entry"),
            Stop(
                "nosys",
                first("hook", "sv_fetch_syscall_args", where=lambda f: f.name == "nosys"),
                "cpu",
                "Number 999: no entry, so nosys",
            ),  # fmt: skip
            Stop("enosys", cerror(ENOSYS), "cpu", "SIGSYS ignored: ENOSYS"),
        ),
    )
)

register(
    Scenario(
        slug="nosys-sigsys",
        title="An unknown system call: SIGSYS",
        summary=(
            "The same syscall(999) with SIGSYS at its default action: nosys() posts SIGSYS, and on the way out "
            "of the kernel the signal kills the process (Bad system call) before the stub sees ENOSYS."
        ),
        command="nosys",
        lecture_point=(
            'Slide "System-call table: syscalls.master": a number with no table entry dispatches to nosys(), '
            "which signals the process."
        ),
        question="Did the program ever see the ENOSYS the kernel returned?",
        views=("narrative", "timeline", "cpu"),
        slide="System-call table: syscalls.master",
        stops=(
            Stop("nosys", first("signal", "SIGSYS"), "narrative", "nosys() posts SIGSYS"),
            Stop("exit", first("proc", "exit"), "timeline", "The signal's default action ends the process"),
        ),
    )
)

# ---------------------------------------------------------------- slides 9, 13, 15: the hooks, one at a time

HOOKS = {
    # slug: (switch, title, the functions the switch makes run, slide, why)
    "ktrace": (
        "ktrace",
        "ktrace",
        ("ktrsyscall", "ktruserret", "ktrsysret"),
        "System-call entry: syscallenter",
        "ktrace -t c records each system call's entry and return in the trace file",
    ),
    "ptrace": (
        "ptrace",
        "ptrace (a debugger)",
        ("ptracestop",),
        "System-call return: syscallret",
        "a debugger tracing system calls stops the process at each entry and return (ptracestop)",
    ),
    "dtrace": (
        "dtrace_syscall",
        "DTrace syscall probes",
        ("systrace_probe_func",),
        "System-call entry: syscallenter",
        "enabled syscall::: probes fire at entry and return (systrace_probe_func)",
    ),
    "audit": (
        "audit",
        "audit",
        ("audit_syscall_enter", "audit_syscall_exit"),
        "Security and reliability (1)",
        "with auditing on, every call is recorded for accountability (audit_syscall_enter and _exit)",
    ),
}

for name, (switch, label, functions, slide, why) in HOOKS.items():
    register(
        Scenario(
            slug=f"hooks-{name}",
            title=f"getpid() with {label} on",
            summary=(
                f"The getpid scenario with {label} switched on: {why}. The hooks that were a skipped flag test "
                f"now run ({', '.join(functions)}), and the same system call takes several times longer."
            ),
            command="getpid",
            config=KernelConfig(**{switch: True}),
            lecture_point=(
                'Slides "syscallenter" and "syscallret": a lot of tracing hooks, each nearly free when off; the '
                "trick is making all of this nothing fast."
            ),
            question="How much longer is getpid() with this hook on? Compare the timeline with the getpid scenario.",
            views=("narrative", "timeline", "cpu", "source"),
            slide=slide,
            stops=tuple(
                Stop(function.replace("_", "-"), entering(function), "source", f"{function} runs: {label} is on")
                for function in functions
            )
            + (Stop("return", first("insn", "sysretq"), "timeline", "Back in user mode, later than without it"),),
        )
    )

register(
    Scenario(
        slug="capability-mode",
        title="cap_enter(): capability mode refuses the global namespace",
        summary=(
            "cap_enter() gives the process a new credential with CRED_FLAG_CAPMODE; from the thread's next system "
            "call on, syscallenter's IN_CAPABILITY_MODE check is true. getpid() is CAPENABLED and works; so is "
            "openat(), which libc's open() calls, but a path looked up from AT_FDCWD, the global namespace, is "
            "refused with ECAPMODE inside sys_openat."
        ),
        command="capmode",
        lecture_point=(
            'Slide "Security and reliability (1)": access control is enforced on every operation: Capsicum checks '
            "in syscallenter which calls may run, and in the lookup which names may be reached."
        ),
        question="Which check refused open(): syscallenter's, or the one inside sys_openat?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="Security and reliability (1)",
        stops=(
            Stop("cap-enter", first("proc", "cap_enter"), "narrative", "cap_enter: a new credential for the process"),
            Stop(
                "capability-check",
                first("skip", "IN_CAPABILITY_MODE", where=lambda mode: mode.in_capability_mode),
                "source",
                "IN_CAPABILITY_MODE is now true; the call is CAPENABLED",
            ),
            Stop(
                "refused",
                Find("exit", "sys_openat", where=lambda error: error == ECAPMODE),
                "source",
                "sys_openat: AT_FDCWD in capability mode, ECAPMODE",
            ),  # fmt: skip
            Stop("ecapmode", cerror(ECAPMODE), "cpu", "open() returns -1, errno ECAPMODE"),
        ),
    )
)

register(
    Scenario(
        slug="cred-update-thread",
        title="thread_cow_update (the slide's cred_update_thread): the thread's cached credential",
        summary=(
            "Threads cache their process's credential (td_ucred) so a system call can check it without a lock. "
            "cap_enter() replaces the process's credential and bumps p_cowgen; the next system call's "
            "thread_cow_update (FreeBSD 11's name for 10.x's cred_update_thread) finds the thread's copy stale and "
            "takes the new one, and every later check uses it."
        ),
        command="capmode",
        lecture_point=(
            'Slide "Security and reliability (2)": an unforgeable credential tied to each process and thread '
            "authorises kernel services; how fresh the thread's cached pointer is matters."
        ),
        question="In which system call does the thread first see its new credential?",
        views=("narrative", "timeline", "source"),
        slide="Security and reliability (2)",
        stops=(
            Stop("skipped", first("skip", "thread_cow_update"), "source", "Credentials agree: the update is skipped"),
            Stop("cap-enter", first("proc", "cap_enter"), "narrative", "cap_enter replaces p_ucred"),
            Stop("updated", entering("thread_cow_update"), "source", "Next syscall: td_ucred = p_ucred"),
        ),
    )
)

register(
    Scenario(
        slug="cached-credential",
        title="A credential cached for asynchronous work: aio_write()",
        summary=(
            "aio_write() queues a job and holds the caller's credential with it (job->cred). Later an AIO daemon, "
            "a kernel process with its own credential, does the write: for the job's duration it takes the cached "
            "credential as its own, so the I/O is authorised as the process that asked, then puts its own back."
        ),
        command="aio-write",
        lecture_point=(
            'Slide "Security and reliability (2)": credentials may be cached to authorise asynchronous work, '
            "done later by another thread on the process's behalf."
        ),
        question="Whose credential authorises the daemon's write, and when was it taken?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="Security and reliability (2)",
        stops=(
            Stop("queued", first("proc", "aio_queue"), "narrative", "aio_write() queues the job with td_ucred held"),
            Stop(
                "daemon-takes-cred",
                first("hook", "td_ucred = job->cred"),
                "timeline",
                "The AIO daemon works under the job's credential",
            ),  # fmt: skip
            Stop("restored", first("hook", "td_ucred = td_savedcred"), "timeline", "The daemon's own credential back"),
        ),
    )
)

# ---------------------------------------------------------------- slide 11: zero before reuse

register(
    Scenario(
        slug="zero-before-reuse",
        title="A new page is zeroed before the process sees it",
        summary=(
            "The program's first store to fresh anonymous memory faults; vm_fault takes a free physical page, "
            "which may have held another process's data, and pmap_zero_page clears it before pmap_enter maps it "
            "into the process."
        ),
        command="trapvec",
        lecture_point=(
            'Slide "Security and reliability (3)": confidentiality is expensive: memory is explicitly zeroed '
            "before it is reused between processes."
        ),
        question="Which comes first: the page zeroing, or the page-table entry that lets the process see it?",
        views=("narrative", "timeline", "vm", "walk"),
        slide="Security and reliability (3)",
        stops=(
            Stop("fault", page_fault_trap(user=True), "cpu", "A first store to a new page traps"),
            Stop(
                "zeroed",
                first("mem", "page zeroed", after=page_fault_trap(user=True)),
                "vm",
                "pagezero clears the frame through the direct map",
            ),  # fmt: skip
            Stop("mapped", fault("zero_fill"), "walk", "Only now is it mapped into the process"),
        ),
    )
)

# ---------------------------------------------------------------- slide 14: getauid

GETAUID = {
    "getauid": ("getauid(): the audit ID, copied out", KernelConfig(), "copyout of cr_audit.ai_auid succeeds"),
    "getauid-jailed": ("getauid() in a jail: ENOSYS", KernelConfig(jailed=True), "jailed(): ENOSYS"),
    "getauid-unprivileged": (
        "getauid() without privilege: EPERM",
        KernelConfig(uid=1001),
        "priv_check(PRIV_AUDIT_GETAUDIT): EPERM",
    ),
}

for slug, (title, config, outcome) in GETAUID.items():
    error_stop = {
        "getauid-jailed": Stop("enosys", sysret_error(ENOSYS), "cpu", "Inside a jail auditing does not exist"),
        "getauid-unprivileged": Stop("eperm", sysret_error(EPERM), "cpu", "uid 1001 lacks the privilege: EPERM"),
    }.get(slug, Stop("copyout", first("enter", "copyout", after=syscall("getauid")), "source", "copyout: 4 bytes"))
    register(
        Scenario(
            slug=slug,
            title=title,
            summary=(
                "sys_getauid as the slide prints it: a jailed credential gets ENOSYS, then priv_check asks for "
                f"PRIV_AUDIT_GETAUDIT, then copyout writes the audit ID to the caller. Here: {outcome}."
            ),
            command="getauid",
            config=config,
            lecture_point=(
                'Slide "getauid": the current thread, the argument structure, lightweight virtualisation (jails), '
                "a privilege check, and copyout, since the kernel cannot write to user memory directly."
            ),
            question="Which check decided the result, and did copyout run?",
            views=("narrative", "cpu", "source"),
            slide="getauid: return process audit ID",
            stops=(Stop("sys-getauid", entering("sys_getauid"), "source", "sys_getauid(td, uap)"), error_stop),
        )
    )

# ---------------------------------------------------------------- slide 20: dd's variations

DD_COMMAND = "dd if=/dev/zero of=/dev/null bs={bs} count={count}"

register(
    Scenario(
        slug="dd-traps",
        title="dd: the traps outside system calls",
        summary=(
            "The slide's D script counts fbt::trap:entry while dd is not in a system call. Here every such trap "
            "is a page fault: trap() calls trap_pfault and vm_fault, which zero-fills a page of dd's buffer. "
            "There are about as many of them as the buffer has pages, and there are only a few dozen system calls."
        ),
        command=DD_COMMAND,
        defaults={"bs": "1m", "count": "1", "malloc_conf": ""},
        lecture_point=(
            'Slide "Traps in practice: dd (1)": counting traps taken outside system calls finds where the system '
            "time goes: thousands of traps, each a demand-zero fault."
        ),
        question="How many times does trap() run outside a system call, against how many system calls?",
        views=("narrative", "timeline", "source", "latency"),
        slide="Traps in practice: dd (1)",
        stops=(
            Stop("trap", entering("trap", after=first("user", "main")), "source", "fbt::trap:entry fires: trap()"),
            Stop("vm-fault", entering("vm_fault", after=first("user", "main")), "source", "trap_pfault calls vm_fault"),
            Stop("end", run_end(), "latency", "Traps against system calls: count them"),
        ),
    )
)
DD_VARIATIONS = {
    "dd-smaller-bs": (
        "dd with a smaller block: bs=1m",
        {"bs": "1m", "count": "1", "malloc_conf": ""},
        DD_COMMAND,
        "A tenth of the buffer, a tenth of the faults: the zeroing cost follows the memory touched, not the "
        "number of system calls.",
    ),
    "dd-count-3": (
        "dd copying three blocks: count=3",
        {"bs": "1m", "count": "3", "malloc_conf": ""},
        DD_COMMAND,
        "Three reads and three writes, but the buffer is allocated (and faulted in) once: the faults do not "
        "grow with count.",
    ),
    "dd-conv-sync": (
        "dd conv=sync without junk filling",
        {"bs": "1m", "count": "1", "malloc_conf": "junk:false"},
        DD_COMMAND + " conv=sync",
        "conv=sync pads each input block with zeroes, so dd memsets the block before read(): the first touch, "
        "and the faults, are back in user mode even without junk filling.",
    ),
}

for slug, (title, defaults, command, point) in DD_VARIATIONS.items():
    register(
        Scenario(
            slug=slug,
            title=title,
            summary=f"The lecture's dd puzzle, varied. {point}",
            command=command,
            defaults=defaults,
            lecture_point=(
                'Slide "Traps in practice: dd (3)": who touches dd\'s buffer first, and how much of it, decides '
                "how many demand-zero faults there are and in which mode."
            ),
            question="How many zero-fill faults, and in which mode? Predict before you run to the end.",
            views=("narrative", "timeline", "vm", "latency"),
            slide="Traps in practice: dd (3)",
            stops=(
                Stop("first-fault", fault("zero_fill", after=first("user", "main")), "vm", "dd's first zero-fill"),
                Stop("read", DD_READ, "source", "dd's first read()"),
                Stop("end", run_end(), "latency", "Count the faults by mode"),
            ),
        )
    )

# ---------------------------------------------------------------- slides 21 and 22: virtual memory

register(
    Scenario(
        slug="cow-after-fork",
        title="Copy-on-write after fork: who copies what",
        summary=(
            "The parent writes four pages, then forks: the child shares them all, read-only, through shadow "
            "objects. The parent writes page 1 before the child has run and gets its own copy; then the child "
            "writes page 0 and gets its own. Pages 2 and 3 are never written, never copied."
        ),
        command="cow",
        lecture_point=(
            'Slide "So: back to VM": copy-on-write avoids the cost of fork\'s copy: a page is copied only when, and '
            "for whom, it is written."
        ),
        question="How many pages did fork() copy, and how many did the writes copy?",
        views=("narrative", "timeline", "vm", "walk"),
        slide="So: back to Virtual Memory (VM)",
        stops=(
            Stop("fork", syscall("fork"), "vm", "fork(): both address spaces share the pages"),
            Stop("parent-write", fault("cow"), "vm", "The parent writes page 1: one page copied, for it"),
            Stop(
                "child-write",
                fault("cow", after=first("proc", "fork_exit")),
                "vm",
                "The child writes page 0: another copy, for the child",
            ),  # fmt: skip
            Stop("end", run_end(), "vm", "Pages 2 and 3 were never copied"),
        ),
    )
)

register(
    Scenario(
        slug="superpages",
        title="Superpages: one TLB entry for 2 MiB",
        summary=(
            "The program touches all 512 pages of a 2 MiB-aligned region. Each first touch is a zero-fill "
            "fault, allocated from a 2 MiB reservation; the last one completes it and pmap promotes the 512 "
            "PTEs to one PDE with PG_PS. Later accesses walk one level less, and one TLB entry covers 2 MiB."
        ),
        command="superpage",
        lecture_point=(
            'Slide "So: back to VM": superpages improve TLB efficiency: one entry maps 512 times the memory of a '
            "4 KiB page (TLB reach)."
        ),
        question="After the promotion, at which level does the page-table walk stop?",
        views=("narrative", "timeline", "walk", "vm"),
        slide="So: back to Virtual Memory (VM)",
        stops=(
            Stop("first-fault", fault("zero_fill", after=syscall("mmap")), "walk", "The first of 512 zero-fills"),
            Stop("promotion", first("mem", "promotion"), "walk", "The reservation is full: promoted to 2 MiB"),
            Stop(
                "superpage-walk",
                first("walk", where=lambda level: level.level == 2, after=first("mem", "promotion")),
                "walk",
                "The next walk stops at the PD: PG_PS",
            ),
        ),
    )
)

register(
    Scenario(
        slug="prezeroed-pages",
        title="Background page zeroing: pages zeroed while the CPU is idle",
        summary=(
            "With vm.idlezero_enable set, while the program sleeps the idle CPU runs the pagezero process, which "
            "zeroes free pages and marks them PG_ZERO. The program then touches eight new pages: each zero-fill "
            "fault asks for a zeroed page, gets one, and skips pmap_zero_page. The zeroing happened anyway, but "
            "in time nobody was waiting for."
        ),
        command="prezero",
        config=KernelConfig(idlezero=True),
        lecture_point=(
            'Slide "So: back to VM": the VM system works hard to avoid the cost of isolation: background page '
            "zeroing moves zeroing off the fault path."
        ),
        question="Did the faults zero their pages? Where did the zeroing time go (compare with the switch off)?",
        views=("narrative", "timeline", "vm", "latency"),
        slide="So: back to Virtual Memory (VM)",
        stops=(
            Stop("idle-zeroing", entering("vm_page_zero_idle"), "timeline", "The CPU is idle: pagezero zeroes pages"),
            Stop(
                "zeroed",
                first("mem", "page zeroed", after=entering("vm_page_zero_idle")),
                "vm",
                "A free page zeroed ahead of need (PG_ZERO)",
            ),  # fmt: skip
            Stop(
                "fault",
                fault("zero_fill", after=syscall("mmap", after=syscall("nanosleep"))),
                "vm",
                "A zero-fill fault finds a zeroed page: no pagezero",
            ),  # fmt: skip
        ),
    )
)

register(
    Scenario(
        slug="pagedaemon",
        title="The page daemon under memory pressure",
        summary=(
            "The lecture's dd with an 8 MiB block on a machine booted with hw.physmem=80M: the kernel keeps 64 MiB, "
            "and dd's 16 MiB buffer does not fit beside the rest. When a fault finds too few free pages it waits "
            "(VM_WAIT) for the page daemon, which scans the inactive and active queues, writes dirty anonymous "
            "pages to swap and frees them; a page touched again later comes back from swap (a hard fault)."
        ),
        command=DD_COMMAND,
        defaults={"bs": "8m", "count": "1", "malloc_conf": ""},
        config=KernelConfig(physmem=80 << 20),
        lecture_point=(
            'Slide "So: back to VM": memory is a cache of secondary storage; the page daemon keeps a pool of free '
            "pages by paging out (LRU-like queues, swap)."
        ),
        question="Which pages did the page daemon choose to write out, and who waited for it?",
        views=("narrative", "timeline", "vm", "latency"),
        slide="So: back to Virtual Memory (VM)",
        stops=(
            Stop("vmwait", first("proc", "vmwait"), "narrative", "Too few free pages: the fault waits (VM_WAIT)"),
            Stop("scan", first("mem", "pagedaemon"), "vm", "The page daemon's pass frees pages"),
            Stop(
                "swap-out",
                first("proc", "sleep", where=lambda w: getattr(w, "write", False)),
                "timeline",
                "A dirty anonymous page is written to swap",
            ),  # fmt: skip
            Stop("swap-in", fault("hard"), "vm", "A page touched again comes back from swap"),
        ),
    )
)

register(
    Scenario(
        slug="fork-vm-map",
        title="fork() through vm_map and vm_object",
        summary=(
            "fork() copies the parent's vm_map entry by entry (vmspace_fork): private writable entries are "
            "marked copy-on-write and share their vm_object, and the first write gives the writer a shadow "
            "object in front of the shared one; at exit the chain collapses."
        ),
        command="fork",
        lecture_point=(
            "Slide \"Mach VM in other operating systems\": FreeBSD implements UNIX's fork() with Mach's "
            "vm_map, vm_object and shadow objects."
        ),
        question="Which vm_object does the child's first write create, and what does it shadow?",
        views=("narrative", "vm", "walk"),
        slide="Mach VM in other operating systems",
        stops=(
            Stop(
                "entries",
                first("mem", "vm_map_entry_link", after=syscall("fork")),
                "vm",
                "vmspace_fork copies map entries",
            ),
            Stop("shadow", first("mem", "vm_object_shadow"), "vm", "A write: a shadow object for the writer"),
            Stop("collapse", first("mem", "vm_object_collapse"), "vm", "At exit the chain collapses"),
        ),
    )
)

register(
    Scenario(
        slug="fork-execve",
        title="fork() then execve(): a copied address space, then a new one",
        summary=(
            "The child of fork() starts with a copy-on-write copy of its parent's vm_map. execve(/bin/getpid) "
            "throws that away: vmspace_exec deletes every map entry, and the new image is mapped in fresh entries "
            "backed by the program file's vm_object; the process, its pid and its open files stay."
        ),
        command="forkexec",
        lecture_point=(
            'Slide "Mach VM in other operating systems": FreeBSD implements fork() and execve() with Mach\'s '
            "vm_map and vm_object: copy-on-write for fork, a new map of the image's objects for execve."
        ),
        question="Which of the child's map entries survive execve(), and what backs the new ones?",
        views=("narrative", "timeline", "vm"),
        slide="Mach VM in other operating systems",
        stops=(
            Stop("fork", syscall("fork"), "vm", "fork(): the child's map is a copy-on-write copy"),
            Stop("execve", syscall("execve"), "source", "The child calls execve(/bin/getpid)"),
            Stop(
                "old-map-gone",
                first("mem", "vm_map_entry_delete", after=syscall("execve")),
                "vm",
                "vmspace_exec: the old entries are deleted",
            ),  # fmt: skip
            Stop(
                "new-image",
                first("mem", "vm_map_insert", after=syscall("execve")),
                "vm",
                "The image is mapped in new entries",
            ),  # fmt: skip
            Stop("same-pid", syscall("getpid", after=syscall("execve")), "cpu", "The new program: the same pid"),
        ),
    )
)

READ_AFTER_MMAP = syscall("read", after=PROGRAM_MMAP)
WRITE_ONE_BYTE = first("syscall", "write", where=lambda call: call.values[2] == 1)  # into the file, not stdout

register(
    Scenario(
        slug="merged-buffer-cache",
        title="The merged VM/buffer cache: read() and mmap() share the file's pages",
        summary=(
            "The program maps the same cold file, then read()s it: bread misses, and getblk gives the new buffer "
            "the file's own vm_pages (allocbuf, vfs_vmio_extend, vm_page_grab) before the disk fills them. The "
            "first load through the mapping then finds its page resident in the vnode's vm_object: a soft fault, "
            "no disk I/O, and vm_fault_prefault maps the other two. A write() into page 1 changes the mapped page "
            "itself: the next load sees it without a fault."
        ),
        command="mmap-file -rw",
        lecture_point=(
            'Slide "Mach VM in other operating systems": FreeBSD merges the buffer cache into the VM system: a '
            "file's buffers are made of its vm_object's pages, so read(), write() and mmap() see one copy."
        ),
        question="Which pages does the first load's fault map, and did any load wait for the disk?",
        views=("narrative", "timeline", "vm", "latency"),
        slide="Mach VM in other operating systems",
        stops=(
            Stop("mmap", PROGRAM_MMAP, "vm", "mmap(): a map entry on the file's vm_object, nothing resident"),
            Stop(
                "grab",
                first("exit", "allocbuf", after=READ_AFTER_MMAP),
                "vm",
                "read(): getblk has built the buffer on the file's vm_pages",
            ),  # fmt: skip
            Stop("disk-read", first("mem", "g_io_request", after=READ_AFTER_MMAP), "timeline", "bread reads the block"),
            Stop("soft-fault", fault("soft", after=READ_AFTER_MMAP), "vm", "The load finds read()'s page: soft"),
            Stop("write", WRITE_ONE_BYTE, "narrative", "write() into page 1's buffer"),
            Stop("shows-through", first("user", "load", after=WRITE_ONE_BYTE), "vm", "The mapping sees it: same page"),
        ),
    )
)

PIPE_COMMAND = "ipc-static -t 65536 -b {bs} -i pipe 2proc"

register(
    Scenario(
        slug="pipe-direct-write",
        title="VM-optimised IPC: a pipe's direct write",
        summary=(
            "A 16 KiB write to a pipe takes the direct path: the kernel holds the writer's own pages "
            "(vm_fault_quick_hold_pages), the writer sleeps (pipdwt), and the reader copies straight out of "
            "those pages into its buffer. One copy instead of two; with bs=4k the buffered path is taken."
        ),
        command=PIPE_COMMAND,
        defaults={"bs": "16384"},
        lecture_point=(
            'Slide "Mach VM in other operating systems": VM-optimised IPC: pipe() uses the VM system to copy '
            "once, from the writer's pages to the reader."
        ),
        question="With bs=4k, does any write take the direct path?",
        views=("narrative", "timeline", "source", "latency"),
        slide="Mach VM in other operating systems",
        stops=(
            Stop("direct", entering("pipe_direct_write"), "source", "The write takes the direct path"),
            Stop("hold", entering("pipe_build_write_buffer"), "source", "The writer's pages are held"),
            Stop(
                "sleeps",
                first("proc", "sleep", where=lambda s: getattr(s, "wmesg", "") == "pipdwt"),
                "timeline",
                "The writer sleeps until the reader has copied",
            ),  # fmt: skip
        ),
    )
)

register(
    Scenario(
        slug="ipc-lab",
        title="The IPC lab: ipc-static over a pipe",
        summary=(
            "The lab's benchmark: two processes move 64 KiB through a pipe in 16 KiB writes and reads, and it "
            "prints its bandwidth. Change the buffer size and compare; the D console measures what the lab asks."
        ),
        command=PIPE_COMMAND,
        defaults={"bs": "16384"},
        lecture_point=(
            'Slide "For next time": Lab 2 explores IPC performance with DTrace: buffer sizes, pipes against '
            "sockets, threads against processes."
        ),
        question="How does the bandwidth change with bs=4k, and why (count the sleeps)?",
        views=("narrative", "timeline", "latency"),
        slide="For next time: Lab 2, DTrace and IPC",
        stops=(
            Stop("pipe", syscall("pipe2"), "narrative", "pipe(): the two ends"),
            Stop("first-write", syscall("write", after=syscall("pipe2")), "timeline", "The first write"),
            Stop("end", run_end(), "latency", "The benchmark prints its bandwidth"),
        ),
    )
)
