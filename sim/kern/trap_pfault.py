"""The page-fault half of sys/amd64/amd64/trap.c and exception.S (FreeBSD 11): IDTVEC(page), trap(),
trap_pfault() and trap_fatal().

When the MMU cannot translate an address the CPU takes exception 14 (#PF): it saves the faulting address in %cr2,
pushes an error code (present? write? user? instruction fetch?) and the interrupted context, and jumps through
the IDT to Xpage, in ring 0. trap() counts the trap (v_trap) and hands page faults to trap_pfault(), which asks
vm_fault() to make the page available. Then doreti returns with IRETQ, and the faulting instruction runs again.

What happens when vm_fault cannot help depends on where the fault came from:
  - user mode: the thread gets SIGSEGV (trapsignal);
  - kernel mode inside copyin/copyout (pcb_onfault set): the saved %rip is replaced by pcb_onfault, so the IRETQ
    lands in the copy routine's fault handler, which returns EFAULT;
  - kernel mode otherwise (a kernel bug, such as a NULL dereference, or a user page touched while SMAP forbids
    it): trap_fatal() prints FreeBSD's "Fatal trap 12" report and the machine panics.
"""

from __future__ import annotations

import operator

from sim.core.events import Trap
from sim.core.kfunc import kfunc
from sim.core.log import EventBudgetExceeded
from sim.core.pcpu import pcpu
from sim.kern.exception import KUCSEL, KUDSEL, doreti, swapgs
from sim.kern.ksyms import kernel_stack_top, kernel_symbol
from sim.kern.proc import Trapframe
from sim.kern.subr_trap import userret
from sim.machine.cpu import KERNEL_CPL, PSL_AC, PSL_I, PSL_NT, PSL_T, USER_CPL
from sim.machine.machine import MachineHalted
from sim.machine.mmu import (
    PG_A,
    PG_FRAME,
    PG_G,
    PG_M,
    PG_NX,
    PG_RW,
    PG_U,
    PG_V,
    PGEX_I,
    PGEX_P,
    PGEX_RSV,
    PGEX_U,
    PGEX_W,
    GeneralProtection,
    PageFault,
)
from sim.vm.vm_fault import quick_zero_fill_key, vm_fault, vm_fault_quick_zero_fill
from sim.vm.vm_param import (
    KERN_INVALID_ADDRESS,
    KERN_PROTECTION_FAILURE,
    KERN_SUCCESS,
    VM_MAXUSER_ADDRESS,
    VM_MIN_KERNEL_ADDRESS,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    trunc_page,
)

# machine/trap.h: FreeBSD's trap type numbers (tf_trapno), not the IDT vectors
T_PROTFLT = 9
T_PAGEFLT = 12
TRAP_MSG = {T_PROTFLT: "general protection fault", T_PAGEFLT: "page fault"}
IDT_VECTOR = {T_PROTFLT: 13, T_PAGEFLT: 14}
IDT_ENTRY = {T_PROTFLT: "Xprot", T_PAGEFLT: "Xpage"}

KCSEL = 0x20  # kernel code selector (GCODE_SEL << 3)
KDSEL = 0x28
SEL_RPL_MASK = 3
SEGV_MAPERR = 1  # sys/signal.h si_code values
SEGV_ACCERR = 2
BUS_OBJERR = 3


class OnFault(Exception):
    """Control resumes at pcb_onfault: the copy routine's fault label (copy_fault) runs next."""


class KernelTrapframe(Trapframe):
    """A trapframe pushed on the kernel stack by a fault taken in kernel mode (the thread's td_frame, which holds
    its user registers, is left alone). Its changes are recorded as ("ktf", field, old, new)."""

    __slots__ = ()
    delta_kind = "ktf"

    def set(self, name: str, value: int) -> None:
        old = self.regs[name]
        if old != value:
            self.regs[name] = value
            pcpu.machine.log.delta(("ktf", name, old, value))


def TRAPF_USERMODE(frame: Trapframe) -> bool:  # noqa: N802 - the kernel's macro
    return (frame["tf_cs"] & SEL_RPL_MASK) == SEL_RPL_MASK


# -- the CPU's side: exception delivery ------------------------------------------------------------------------------


_SAVED_REGISTERS = tuple(
    (f"tf_{reg}", reg) for reg in ("rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx", "rbp", "r10", "r11")
)
_ENTRY_ADDRESS: dict[int, int] = {}
_SAVED_FIELDS = tuple(field for field, _ in _SAVED_REGISTERS)
_saved_values = operator.itemgetter(*(reg for _, reg in _SAVED_REGISTERS))
_saved_in_frame = operator.itemgetter(*_SAVED_FIELDS)


def _entry_address(trapno: int) -> int:
    address = _ENTRY_ADDRESS.get(trapno)
    if address is None:
        address = _ENTRY_ADDRESS[trapno] = kernel_symbol(IDT_ENTRY[trapno])
    return address


def _load(target, values: dict, recording: bool) -> None:
    """Write registers (of the CPU or a trapframe): one recorded delta each when recording, else in one go."""
    if recording:
        for name, value in values.items():
            target.set(name, value)
    else:
        target.regs.update(values)


def user_fault(fault: PageFault | GeneralProtection) -> None:
    """An access made in ring 3 failed: take the exception, handle it, and return to user mode (IRETQ).

    Fast-forward: with recording off, a demand-zero fault exactly like one already handled (same path through
    the kernel, so the same costs and the same number of events) is replayed by vm_fault_quick_zero_fill:
    the same state changes, and the time and event count the full path took the first time.
    """
    if pcpu.machine.log.recording or type(fault) is not PageFault or not _fault_quietly(fault.va, fault.err, fault):
        _user_fault(fault)


def not_present_fault(va: int, err: int) -> None:
    """user_fault(PageFault(va, err, "PTE not present")), for loops that met Mmu.NOT_PRESENT (recording off):
    the exception object is made only if the fault takes the full path."""
    if not _fault_quietly(va, err, None):
        _user_fault(PageFault(va, err, "PTE not present"))


def _fault_quietly(va: int, err: int, fault: PageFault | None) -> bool:
    """Take a user page fault (recording off) by replaying one like it, or the full way while measuring it for
    later replays; False if it is not a fault the replay covers (the caller takes the full path)."""
    td = pcpu.curthread
    found = quick_zero_fill_key(td, va, err)
    if found is None:
        return False
    key, context = found
    replay = pcpu.kernel.vm.fault_replays.get(key)
    if replay is not None:
        _replay_fault(td, va, err, replay, context)
    else:
        _measure_fault(td, fault if fault is not None else PageFault(va, err, "PTE not present"), key)
    return True


def memset_pages_quietly(va: int, end: int, byte: int, store_ns: int) -> int:
    """Fast-forward of a user-mode memset over the whole pages of [va, end) with recording off: for each page,
    what the CPU's store, the MMU and (for a page not yet there) the replayed #PF do, fused in one loop, with the
    same state changes, time and event counts as umem.memset page by page. Returns where it stopped: `end`, or
    the first page it leaves to the general path (anything but a TLB hit, a present PTE under a cached PDE, or a
    demand-zero fault that _fault_quietly would replay from the region's reservation); it changes nothing for
    that page. store_ns is the store's time for one page (its bytes at user_byte_ps)."""
    machine = pcpu.machine
    log, mmu = machine.log, machine.mmu
    if log.recording or mmu.regs["cr3"] != mmu.loaded_cr3:
        return va
    td = pcpu.curthread
    kvm = pcpu.kernel.vm
    frames = machine.physmem.frames
    tlb, tlb_large, pde_cache = mmu.tlb, mmu.tlb_large, mmu.pde_cache
    tlb_entries, level_ns = mmu.tlb_entries, mmu.level_ns
    access = PGEX_W | PGEX_U  # a user write: allowed if the entry has PG_U and PG_RW (Mmu._allowed)
    region = -1  # the 2 MiB region `run` was made for
    run = None
    while va < end:
        vpn = va >> 12
        cached = tlb.get(vpn)
        if cached is not None:  # Mmu.translate's TLB hit
            if not (cached & PG_U and cached & PG_RW and cached & PG_M):
                return va
            mmu.hits += 1
            pfn = (cached & PG_FRAME) >> 12
        else:
            if tlb_large.get(va >> 21) is not None:
                return va
            pde = pde_cache.get(va >> 21)
            if pde is None:
                return va
            pt = frames.get((pde & PG_FRAME) >> 12)
            if type(pt) is not list:
                return va
            i1 = vpn & 0x1FF
            if not pt[i1] & PG_V:
                # #PF, page not present: replayed if the region's faults are plain zero fills (quick_zero_fill_key
                # for the region's first one; for the rest, what that key depends on and can change page to page).
                if va >> 21 != region:
                    run = _zero_fill_run(td, va, access)
                    if run is None:
                        return va  # (tried again at the next page: the general path may make it replayable)
                    region = va >> 21
                replay, map, entry, object, pt_and_pa, rv, key_end = run
                pindex = (va - entry.start + entry.offset) >> 12
                index = vpn & 0x1FF  # (pindex + pg_color) & 511: the object is coloured to match the region
                if (
                    va >= key_end
                    or pindex in object.memq
                    or pindex in object.swblk
                    or rv.popmap >> index & 1
                    or rv.popcnt >= 511
                    or kvm.phys.free_count + kvm.v_reserved_free <= kvm.v_free_reserved + 1
                ):
                    return va
                # The walk that faulted (Mmu._walk_quietly: the PDE cache, then the PTE), then the fault.
                mmu.misses += 1
                mmu.walks += 1
                log.now += level_ns
                log.unrecorded += 3
                _replay_fault(td, va, access, replay, (map, entry, object, pindex, pt_and_pa, rv, index))
            e1 = pt[i1]
            eff = (pde & e1 & (PG_RW | PG_U)) | ((pde | e1) & PG_NX) | (e1 & (PG_G | PG_M))
            if not (eff & PG_U and eff & PG_RW):
                return va  # (only a page that was present already can get here: nothing was changed for it)
            # The walk (again, after a fault), then the TLB fill (Mmu._walk_quietly's success path).
            mmu.misses += 1
            mmu.walks += 1
            log.now += level_ns
            if not e1 & PG_A:
                pt[i1] = e1 = e1 | PG_A
            if not e1 & PG_M:
                pt[i1] = e1 = e1 | PG_M
                eff |= PG_M
            log.unrecorded += 4
            if len(tlb) >= tlb_entries:
                del tlb[next(iter(tlb))]
            tlb[vpn] = (e1 & PG_FRAME) | eff
            pfn = (e1 & PG_FRAME) >> 12
        # The store: the whole frame becomes `byte` (PhysMem.fill_frame), one "user" event.
        if byte:
            frames[pfn] = byte
        else:
            frames.pop(pfn, None)
        log.now += store_ns
        log.unrecorded += 1
        if log.unrecorded + log.record_budget > log.event_budget:
            raise EventBudgetExceeded(log.event_budget)
        va += 4096
    return va


def _zero_fill_run(td, va: int, access: int) -> tuple | None:
    """What memset_pages_quietly needs to replay the demand-zero faults of va's 2 MiB region: the replay and
    context of the fault at va (quick_zero_fill_key), if it comes from an existing reservation and was measured
    already, with where the key stops holding (the end of the map entry). None if the region's faults are not
    replayable that way."""
    found = quick_zero_fill_key(td, va, access & (PGEX_W | PGEX_U | PGEX_I))
    if found is None:
        return None
    key, (map, entry, object, _pindex, pt_and_pa, rv, _index) = found
    replay = pcpu.kernel.vm.fault_replays.get(key)
    if replay is None or rv is None or object.pg_color & 0x1FF != (va >> 12) - _pindex & 0x1FF:
        return None
    return replay, map, entry, object, pt_and_pa, rv, entry.end


def _measure_fault(td, fault: PageFault, key: tuple) -> None:
    """Take the fault the full way, and remember what it cost if it went the way the replay reproduces."""
    machine, vm = pcpu.machine, pcpu.kernel.vm
    log, cnt = machine.log, vm.cnt
    prezeroed = key[1]
    before = (log.now, machine.user_ns, log.total, cnt.v_zfod, cnt.v_ozfod, cnt.v_pagezero, cnt.pde_promotions)
    _user_fault(fault)
    after = (log.now, machine.user_ns, log.total, cnt.v_zfod, cnt.v_ozfod, cnt.v_pagezero, cnt.pde_promotions)
    expected = (before[3] + 1, before[4] + prezeroed, before[5] + (not prezeroed), before[6])
    if after[3:] == expected and machine.cpu.regs["cpl"] == 3:
        user = after[1] - before[1]
        vm.fault_replays[key] = (user, after[0] - before[0] - user, after[2] - before[2])


def _replay_fault(td, va: int, err: int, replay: tuple[int, int, int], context: tuple) -> None:
    machine = pcpu.machine
    log, regs = machine.log, machine.cpu.regs
    user_ns, sys_ns, events = replay
    # The fault's time: user_ns in ring 3, then sys_ns in ring 0, billed as cpu.set("cpl", ...) would at each
    # change of ring (Machine._cpl_changed), with no delta to record.
    now = log.now + user_ns
    closed = machine._closed_ns
    closed[USER_CPL] += now - machine._ring_since
    regs["cpl"] = KERNEL_CPL
    vm_fault_quick_zero_fill(td, va, err, context)
    tf = td.td_frame.regs
    saved = _saved_values(regs)
    if _saved_in_frame(tf) != saved:  # a loop's faults find the same registers in the frame: nothing to write
        tf.update(zip(_SAVED_FIELDS, saved, strict=True))
    tf["tf_rip"] = regs["rip"]
    tf["tf_rsp"] = regs["rsp"]
    tf["tf_rflags"] = regs["rflags"]
    tf["tf_cs"] = KUCSEL
    tf["tf_ss"] = KUDSEL
    tf["tf_trapno"] = T_PAGEFLT
    tf["tf_err"] = err
    tf["tf_addr"] = va
    regs["cr2"] = va
    closed[KERNEL_CPL] += sys_ns
    log.now = machine._ring_since = now + sys_ns
    regs["cpl"] = USER_CPL
    log.unrecorded += events
    if log.unrecorded + log.record_budget > log.event_budget:
        raise EventBudgetExceeded(log.event_budget)


# What the CPU loads on a trap from user mode (the IDT entry, the kernel stack, %cr2 for #PF), in that order, and
# what Xpage/Xprot save in the trapframe: the registers, the interrupted context, and the trap's own fields.
_ENTRY_REGISTERS = {T_PAGEFLT: ("rsp", "rflags", "rip", "cr2"), T_PROTFLT: ("rsp", "rflags", "rip")}
_USER_FRAME_FIELDS = (*_SAVED_FIELDS, "tf_rip", "tf_rsp", "tf_rflags", "tf_cs", "tf_ss", "tf_trapno", "tf_err",
                      "tf_addr")  # fmt: skip


def _user_fault(fault: PageFault | GeneralProtection) -> None:
    machine, td = pcpu.machine, pcpu.curthread
    cpu, costs = machine.cpu, machine.profile
    recording = machine.log.recording
    trapno, err, addr = _decode(fault)
    regs = cpu.regs
    # The CPU pushes the interrupted context, switches to the kernel stack and jumps through the IDT.
    user_rsp, user_rip, user_rflags = regs["rsp"], regs["rip"], regs["rflags"]
    cpu.set("cpl", KERNEL_CPL)
    machine.log.now += costs.trap_entry_ns
    entry_rflags = user_rflags & ~(PSL_I | PSL_T | PSL_NT | PSL_AC)
    cpu.set_many(_ENTRY_REGISTERS[trapno], (kernel_stack_top(td.td_tid), entry_rflags, _entry_address(trapno), addr))
    machine.emit("trap", _trap_name(trapno), Trap(trapno, err, addr, True))
    machine.enter(IDT_ENTRY[trapno])
    swapgs()
    machine.log.now += costs.trapframe_ns
    tf = td.td_frame
    saved = (*_saved_values(regs), user_rip, user_rsp, user_rflags, KUCSEL, KUDSEL, trapno, err, addr)
    tf.set_many(_USER_FRAME_FIELDS, saved)
    detail = f"tf_trapno = {trapno}, tf_err = {err:#x}, tf_addr = %cr2 = {addr:#x}" if recording else ""
    machine.emit("insn", "build trapframe", detail)
    trap(tf)
    machine.exit(IDT_ENTRY[trapno])  # jmp doreti
    doreti(td)


def kernel_fault(fault: PageFault | GeneralProtection, rip: int) -> None:
    """An access made in ring 0 (by `rip`) failed: take the exception on the kernel stack and handle it.

    Returns when the access can be retried; raises OnFault when trap() sent control to pcb_onfault, and
    MachineHalted (from panic) when the fault was fatal.

    Fast-forward: with recording off, a copy routine's demand-zero fault exactly like one already handled is
    replayed, as user_fault does for user-mode faults (see _kernel_fault_quietly).
    """
    if not pcpu.machine.log.recording and type(fault) is PageFault and _kernel_fault_quietly(fault, rip):
        return
    _kernel_fault(fault, rip)


def _kernel_fault_quietly(fault: PageFault, rip: int) -> bool:
    """A kernel-mode #PF in a copy routine (pcb_onfault set) on a page not present, that vm_fault would fill with
    zeros as quick_zero_fill_key sees it (recording off): replay one measured before (its time, all in ring 0,
    and its event count) with vm_fault_quick_zero_fill's state changes; the CPU ends as IRETQ leaves it (%rip
    at the faulting instruction, rflags as they were, %cr2 the address). False if not such a fault."""
    td = pcpu.curthread
    va, err = fault.va, fault.err
    if not td.td_pcb.pcb_onfault or err & (PGEX_P | PGEX_U | PGEX_RSV):
        return False
    found = quick_zero_fill_key(td, va, err)
    if found is None:
        return False
    key, context = found
    key = ("kernel", *key)
    machine, vm = pcpu.machine, pcpu.kernel.vm
    log, cnt, regs = machine.log, vm.cnt, machine.cpu.regs
    replay = vm.fault_replays.get(key)
    if replay is not None:
        sys_ns, events = replay
        vm_fault_quick_zero_fill(td, va, err, context, usermode=False)
        regs["rip"] = rip
        regs["cr2"] = va
        log.now += sys_ns
        log.unrecorded += events
        if log.unrecorded + log.record_budget > log.event_budget:
            raise EventBudgetExceeded(log.event_budget)
        return True
    # Take it the full way, and remember what it cost if it went the way the replay reproduces.
    prezeroed = key[2]
    before = (log.now, log.total, cnt.v_zfod, cnt.v_ozfod, cnt.v_pagezero, cnt.pde_promotions, regs["rflags"])
    _kernel_fault(fault, rip)
    after = (log.now, log.total, cnt.v_zfod, cnt.v_ozfod, cnt.v_pagezero, cnt.pde_promotions, regs["rflags"])
    expected = (before[2] + 1, before[3] + prezeroed, before[4] + (not prezeroed), before[5], before[6])
    if after[2:] == expected and regs["cpl"] == KERNEL_CPL and regs["rip"] == rip and regs["cr2"] == va:
        vm.fault_replays[key] = (after[0] - before[0], after[1] - before[1])
    return True


def _kernel_fault(fault: PageFault | GeneralProtection, rip: int) -> None:
    machine = pcpu.machine
    cpu, costs = machine.cpu, machine.profile
    recording = machine.log.recording
    trapno, err, addr = _decode(fault)
    machine.charge(costs.trap_entry_ns)
    rflags = cpu["rflags"]
    entry = {"rflags": rflags & ~(PSL_I | PSL_T | PSL_NT), "rip": _entry_address(trapno)}
    if trapno == T_PAGEFLT:
        entry["cr2"] = addr
    _load(cpu, entry, recording)
    machine.emit("trap", _trap_name(trapno), Trap(trapno, err, addr, False))
    machine.enter(IDT_ENTRY[trapno])
    machine.charge(costs.trapframe_ns)
    frame = KernelTrapframe()
    saved = {"tf_rip": rip, "tf_rsp": cpu["rsp"], "tf_rbp": cpu["rbp"], "tf_rflags": rflags, "tf_cs": KCSEL}
    saved.update(tf_ss=KDSEL, tf_trapno=trapno, tf_err=err, tf_addr=addr)
    _load(frame, saved, recording)
    detail = f"from kernel mode: no swapgs; tf_rip = {rip:#x}, tf_addr = {addr:#x}" if recording else ""
    machine.emit("insn", "build trapframe", detail)
    trap(frame)
    machine.exit(IDT_ENTRY[trapno])
    machine.enter("doreti")
    machine.charge(costs.trapframe_ns)
    machine.exit("doreti")
    machine.charge(costs.iretq_ns)
    _load(cpu, {"rip": frame["tf_rip"], "rflags": frame["tf_rflags"]}, recording)
    resumed = "pcb_onfault, the copy routine's fault label" if frame["tf_rip"] != rip else "the faulting instruction"
    machine.emit("insn", "iretq", f"back to ring 0 at {frame['tf_rip']:#x} ({resumed})" if recording else "")
    if frame["tf_rip"] != rip:
        raise OnFault()


def _decode(fault: PageFault | GeneralProtection) -> tuple[int, int, int]:
    if isinstance(fault, PageFault):
        return T_PAGEFLT, fault.err, fault.va
    return T_PROTFLT, 0, fault.va


def _trap_name(trapno: int) -> str:
    return f"#{'PF' if trapno == T_PAGEFLT else 'GP'}"


def fault_code_text(err: int) -> str:
    """trap_fatal's wording of a page-fault error code: "supervisor read data, page not present"."""
    if err & PGEX_RSV:
        why = "reserved bits in PTE"
    else:
        why = "protection violation" if err & PGEX_P else "page not present"
    return (
        f"{'user' if err & PGEX_U else 'supervisor'} {'write' if err & PGEX_W else 'read'} "
        f"{'instruction' if err & PGEX_I else 'data'}, {why}"
    )


# -- trap() ------------------------------------------------------------------------------------------------------


@kfunc
def trap(frame: Trapframe) -> None:
    """Exception, fault and trap handler: every trap but the system call comes here."""
    vm = pcpu.kernel.vm
    vm.cnt.v_trap += 1
    td = pcpu.curthread
    trapno = frame["tf_trapno"]
    if TRAPF_USERMODE(frame):
        if trapno == T_PAGEFLT:
            result = trap_pfault(frame, True)
            if result == -1:
                return
            if result == 0:
                userret(td, frame)
                return
            signo, ucode = result
        else:
            signo, ucode = _sigbus(), BUS_OBJERR
        _trapsignal(td, signo, ucode, frame["tf_addr"])
        userret(td, frame)
        return
    if trapno == T_PAGEFLT:
        trap_pfault(frame, False)
        return
    if trapno == T_PROTFLT and td.td_pcb.pcb_onfault:
        frame.set("tf_rip", td.td_pcb.pcb_onfault)
        return
    trap_fatal(frame, 0)


def _sigbus() -> int:
    from sim.kern.kern_sig import SIGBUS

    return SIGBUS


def _trapsignal(td, signo: int, ucode: int, addr: int) -> None:
    from sim.kern.kern_sig import trapsignal

    trapsignal(td, signo, ucode, addr)


@kfunc
def trap_pfault(frame: Trapframe, usermode: bool):
    """Resolve a page fault: 0 if handled, -1 if fatal, else (signal, si_code) for a user-mode failure."""
    td = pcpu.curthread
    p = td.td_proc
    vm = pcpu.kernel.vm
    vm.cnt.fault_usermode = usermode
    eva = frame["tf_addr"]
    err = frame["tf_err"]
    if eva >= VM_MIN_KERNEL_ADDRESS or p.p_vmspace is None:
        # Kernel addresses are mapped at boot and never fault legitimately (the kernel map is not modelled).
        if usermode:
            vm.cnt.count_fault("protection" if err & PGEX_P else "unmapped")
            return _sigsegv(), SEGV_MAPERR
        vm.cnt.count_fault("unmapped")
        return _kernel_nogo(td, frame, eva)
    map = p.p_vmspace.vm_map
    if not usermode and (trap_is_smap(frame) or not td.td_pcb.pcb_onfault):
        # The kernel touched user memory outside a copy routine: a bug, never handled as a normal fault.
        vm.cnt.count_fault("protection" if err & PGEX_P else "unmapped")
        trap_fatal(frame, eva)
        return -1
    if err & PGEX_RSV:
        trap_fatal(frame, eva)
        return -1
    if err & PGEX_W:
        ftype = VM_PROT_WRITE
    elif err & PGEX_I:
        ftype = VM_PROT_EXECUTE
    else:
        ftype = VM_PROT_READ
    if eva >= VM_MAXUSER_ADDRESS:
        rv = KERN_INVALID_ADDRESS  # no user map entry can contain it
        vm.cnt.count_fault("unmapped")
    else:
        rv = vm_fault(map, trunc_page(eva), ftype, 0)
    vm.cnt.fault_usermode = False  # vm_fault called from anywhere else (e.g. vm_fault_quick_hold) is the kernel's
    if rv == KERN_SUCCESS:
        return 0
    if not usermode:
        return _kernel_nogo(td, frame, eva)
    # FreeBSD 11 gives binaries of its era SIGSEGV for both (machdep.prot_fault_translation autodetect).
    return _sigsegv(), SEGV_ACCERR if rv == KERN_PROTECTION_FAILURE else SEGV_MAPERR


def _sigsegv() -> int:
    from sim.kern.kern_sig import SIGSEGV  # kern_sig imports much of the kernel: loaded when first needed

    return SIGSEGV


def _kernel_nogo(td, frame: Trapframe, eva: int) -> int:
    if td.td_pcb.pcb_onfault:
        frame.set("tf_rip", td.td_pcb.pcb_onfault)
        pcpu.machine.emit(
            "hook", "pcb_onfault", f"resume at {td.td_pcb.pcb_onfault:#x}: the copy routine returns EFAULT"
        )
        return 0
    trap_fatal(frame, eva)
    return -1


def trap_is_smap(frame: Trapframe) -> bool:
    """A kernel access to a present user page with rflags.AC clear, while CR4.SMAP is on."""
    from sim.machine.cpu import CR4_SMAP

    smap = bool(pcpu.machine.cpu["cr4"] & CR4_SMAP)
    return (
        smap and (frame["tf_err"] & (PGEX_P | PGEX_U | PGEX_I | PGEX_RSV)) == PGEX_P and not frame["tf_rflags"] & PSL_AC
    )


@kfunc
def trap_fatal(frame: Trapframe, eva: int) -> None:
    """Print the fatal-trap report to the console, then panic: the machine stops."""
    td = pcpu.curthread
    p = td.td_proc
    trapno = frame["tf_trapno"]
    code = frame["tf_err"]
    mode = "user" if TRAPF_USERMODE(frame) else "kernel"
    lines = [
        "",
        "",
        f"Fatal trap {trapno}: {TRAP_MSG.get(trapno, 'unknown')} while in {mode} mode",
        "cpuid = 0; apic id = 00",
    ]
    if trapno == T_PAGEFLT:
        lines.append(f"fault virtual address\t= {eva:#x}")
        lines.append(f"fault code\t\t= {fault_code_text(code)}")
    rflags = frame["tf_rflags"]
    eflags = ("trace trap, " if rflags & PSL_T else "") + ("interrupt enabled, " if rflags & PSL_I else "")
    lines += [
        f"instruction pointer\t= {frame['tf_cs']:#x}:{frame['tf_rip']:#x}",
        f"stack pointer\t        = {frame['tf_ss']:#x}:{frame['tf_rsp']:#x}",
        f"frame pointer\t        = {frame['tf_ss']:#x}:{frame['tf_rbp']:#x}",
        f"processor eflags\t= {eflags}IOPL = {(rflags >> 12) & 3}",
        f"current process\t\t= {p.p_pid} ({p.p_comm})",
        f"trap number\t\t= {trapno}",
    ]
    pcpu.kernel.console.append("\n".join(lines) + "\n")
    panic(TRAP_MSG.get(trapno, "unknown trap"))


def panic(message: str) -> None:
    """The kernel gives up: print "panic: ...", record it, and halt the simulated machine."""
    machine = pcpu.machine
    pcpu.kernel.console.append(f"panic: {message}\ncpuid = 0\n")
    machine.emit("panic", "panic", message)
    raise MachineHalted(message)
