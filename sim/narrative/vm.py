"""Words for the events and deltas of the machine and the VM system: page walks, the TLB, page-table stores,
map entries, objects, pages and frames, faults and traps, copies between the kernel and user memory.

Each function here turns one payload of sim/core/events.py into the text the stepper, the JSON API and the CLI
show; the texts are the ones the simulator used to write into its events.
"""

from __future__ import annotations

from sim.core import events as ev
from sim.kern.trap_pfault import T_PROTFLT, fault_code_text
from sim.machine.mmu import LEVEL_NAMES, PDRMASK, PG_FRAME, PG_PS_FRAME
from sim.machine.mmu import flags_text as entry_flags_text
from sim.narrative import CONSTANT_WORDS, words
from sim.vm.vm_object import OBJT_NAMES
from sim.vm.vm_page import PQ_NONE, QUEUE_NAMES
from sim.vm.vm_param import (
    INHERIT_NAMES,
    MAP_ENTRY_COW,
    MAP_ENTRY_GROWS_DOWN,
    MAP_ENTRY_NEEDS_COPY,
    VM_PROT_EXECUTE,
    VM_PROT_WRITE,
    prot_text,
)

CONSTANT_WORDS.update(
    {
        ("insn", "syscall"): "ring 3 -> ring 0 at MSR_LSTAR; %rcx = return address, %r11 = rflags",
        ("insn", "movq %cr3,%cr3"): "reload %cr3: every non-global TLB entry is dropped",
        ("insn", "stac"): "rflags.AC = 1: user pages may be touched (SMAP)",
        ("insn", "clac"): "rflags.AC = 0: user pages are off limits again",
    }
)

# -- the MMU ------------------------------------------------------------------------------------------------------


@words.register
def _(data: ev.TlbMiss) -> str:
    return f"{data.va:#x}: not in the TLB; walk the page tables from %cr3 = {data.cr3:#x}"


@words.register
def _(data: ev.PdeCacheHit) -> str:
    return f"PML4E, PDPTE and PDE for {data.va & ~PDRMASK:#x} are in the paging-structure cache: PT at {data.pt:#x}"


def walk_leads_to(level: ev.WalkLevel) -> tuple[str, int]:
    """Where a present entry leads: ("next table" | "page" | "large page", the address)."""
    if level.large:
        return "large page", level.entry & PG_PS_FRAME
    return ("page" if level.level == 3 else "next table"), level.entry & PG_FRAME


@words.register
def _(data: ev.WalkLevel) -> str:
    name = f"{LEVEL_NAMES[data.level]}[{data.index}] at {data.entry_address:#x} = {data.entry:#x}"
    if not data.present:
        return f"{name}: not present -> #PF"
    what, address = walk_leads_to(data)
    return f"{name} ({entry_flags_text(data.entry)}) -> {what} {address:#x}"


@words.register
def _(data: ev.TlbFill) -> str:
    return f"{data.va:#x} -> {data.pa:#x} cached ({entry_flags_text(data.flags)})"


@words.register
def _(data: ev.TlbFlush) -> str:
    return f"%cr3 = {data.cr3:#x}: the TLB's non-global entries were dropped"


@words.register
def _(data: ev.Invlpg) -> str:
    return f"drop the TLB's translation of {data.va:#x}"


# -- the pmap ------------------------------------------------------------------------------------------------------

_TABLE_NAMES = ("PML4", "PDPT", "PD", "PT")

# PteStore.why -> what the store is for, in words (from the entry's va, pa and level).
PTE_STORE_REASONS = {
    "new table": lambda s: f"new {_TABLE_NAMES[s.level + 1]} page",
    "pmap_enter": lambda s: f"pmap_enter {s.va:#x} -> {s.pa:#x}",
    "prefault": lambda s: f"prefault {s.va:#x} -> {s.pa:#x} read-only",
    "pmap_remove": lambda s: f"pmap_remove {s.va:#x}",
    "pmap_remove 2M": lambda s: f"pmap_remove the 2 MiB page at {s.va:#x}",
    "free table": lambda s: f"free the empty {_TABLE_NAMES[s.level + 1]} page",
    "pmap_protect": lambda s: f"pmap_protect {s.va:#x}",
    "pmap_protect 2M": lambda s: f"pmap_protect the 2 MiB page at {s.va:#x}",
    "pmap_remove_all": lambda s: f"pmap_remove_all {s.va:#x} of page {s.pa:#x}",
    "clear A": lambda s: f"page daemon clears A for {s.va:#x}",
    "promote": lambda s: f"pmap_promote_pde: 512 pages at {s.va & ~PDRMASK:#x} become one",
    "demote": lambda s: f"pmap_demote_pde at {s.va & ~PDRMASK:#x}",
    "exit": lambda s: f"exit: unmap {s.va:#x}",
}


@words.register
def _(data: ev.PteStore) -> str:
    return (
        f"{PTE_STORE_REASONS[data.why](data)}: {LEVEL_NAMES[data.level]}[{data.index}] at {data.entry_address:#x}: "
        f"{data.old:#x} -> {data.new:#x} ({entry_flags_text(data.new)})"
    )


@words.register
def _(data: ev.NewPml4) -> str:
    slots = ", ".join(str(slot) for slot in data.kernel_slots)
    return f"new PML4 at {data.pml4:#x}: kernel entries {slots} copied"


@words.register
def _(data: ev.Superpage) -> str:
    if data.pa:
        return f"2 MiB superpage at {data.va:#x} -> {data.pa:#x}"
    return f"2 MiB page at {data.va:#x} split into 512 PTEs"


@words.register
def _(data: ev.PageZeroed) -> str:
    return f"frame {data.pa:#x} (DMAP {data.dmap_va:#x}) is now all zero"


@words.register
def _(data: ev.PageCopied) -> str:
    return f"frame {data.src:#x} copied to {data.dst:#x}"


@words.register
def _(data: ev.Cr3Load) -> str:
    return f"load pmap {data.pmap or hex(data.cr3)}'s PML4 {data.cr3:#x}: the TLB's user entries go"


# -- maps, objects, pages, frames ----------------------------------------------------------------------------------


def entry_flag_words(eflags: int) -> str:
    """A map entry's flags as the VM view shows them: "COW|NEEDS_COPY", or ""."""
    names = ((MAP_ENTRY_COW, "COW"), (MAP_ENTRY_NEEDS_COPY, "NEEDS_COPY"), (MAP_ENTRY_GROWS_DOWN, "GROWS_DOWN"))
    return "|".join(name for bit, name in names if eflags & bit)


def protection_words(prot: int) -> str:
    """A vm_prot_t as "rw-"."""
    return prot_text(prot)


def inheritance_words(inheritance: int) -> str:
    return INHERIT_NAMES[inheritance]


def object_type_words(type: int) -> str:
    return OBJT_NAMES[type]


@words.register
def _(data: ev.MapEntry) -> str:
    what = f"object {data.object}+{data.offset:#x}" if data.object is not None else "anonymous (no object yet)"
    flags = entry_flag_words(data.eflags)
    return (
        f"{data.start:#x}-{data.end:#x} {prot_text(data.protection)}/{prot_text(data.max_protection)} "
        f"inherit={INHERIT_NAMES[data.inheritance]} {what}" + (f" {flags}" if flags else "")
    )


@words.register
def _(data: ev.MapKey) -> str:
    return f"{data.vmspace}:{data.start:#x}"


@words.register
def _(data: ev.ObjectState) -> str:
    text = f"object {data.id} ({OBJT_NAMES[data.type]}, {data.size} pages, {data.resident} resident, refs {data.refs}"
    if data.path is not None:
        text += f", {data.path}"
    if data.backing is not None:
        text += f", shadows object {data.backing}"
    return text + ")"


@words.register
def _(data: ev.PageState) -> str:
    if data.object is None:
        if data.queue == PQ_NONE and not data.wired:
            return "free (PG_ZERO)" if data.zero else "free"
        return "wired, no object"
    where = f"object {data.object} pindex {data.pindex}"
    return f"{where}, {QUEUE_NAMES[data.queue]}" + (", wired" if data.wired else "")


@words.register
def _(data: ev.FrameContents) -> str:
    if data.being_read:
        return "(being read)"
    if data.table_entries is not None:
        return f"page table ({data.table_entries} entries)"
    if data.fill == 0:
        return "zero"
    if data.fill is not None:
        return f"all {data.fill:#04x}"
    return "data"


@words.register
def _(data: ev.ObjectShadowed) -> str:
    below = f"object {data.backing}" if data.backing is not None else "nothing"
    return f"object {data.object} now shadows {below} for {words(data.entry)}"


@words.register
def _(data: ev.ObjectCollapsed) -> str:
    return f"object {data.backing} merged into object {data.object}"


# -- faults and the page daemon ------------------------------------------------------------------------------------

_ACCESS = {VM_PROT_WRITE: "write", VM_PROT_EXECUTE: "execute"}
FAULT_DESCRIPTIONS = {
    "zero_fill": "no page anywhere in the object chain, so a zeroed one (demand-zero)",
    "cow": "copy-on-write: the page below in the chain is copied into this entry's own object",
    "soft": "the page is already resident, it only needed mapping",
    "hard": "the pager read the page in",
}


@words.register
def _(data: ev.FaultFailed) -> str:
    if data.protection is not None:
        why = f"the entry allows only {prot_text(data.protection)}"
    else:
        why = "no map entry contains it"
    return f"{_ACCESS.get(data.fault_type, 'read')} at {data.va:#x} fails: {why}"


@words.register
def _(data: ev.FaultResolved) -> str:
    return (
        f"{_ACCESS.get(data.fault_type, 'read')} at {data.va:#x}: {FAULT_DESCRIPTIONS[data.how]}; object "
        f"{data.object} page {data.pindex} is page {data.pa:#x} mapped {prot_text(data.protection)}"
    )


@words.register
def _(data: ev.VmWait) -> str:
    return f"only {data.free} pages free: the thread waits for the page daemon"


@words.register
def _(data: ev.PageoutScan) -> str:
    return f"freed {data.freed} pages; {data.free} free, target {data.target}"


@words.register
def _(data: ev.DiskWait) -> str:
    if data.path is not None:
        why = f"read {data.path} at offset {data.pindex << 12:#x}"
    else:
        why = f"swap {'out' if data.write else 'in'} object {data.object} page {data.pindex}"
    return f"{why}: the thread waits {data.ns:,} ns for the disk (PVM, 'vnread')"


# -- traps ---------------------------------------------------------------------------------------------------------


@words.register
def _(data: ev.Trap) -> str:
    ring = "user" if data.user else "kernel"
    if data.trapno == T_PROTFLT:
        return f"general protection fault (vector 13) in {ring} mode: {data.addr:#x} is not canonical"
    return (
        f"page fault (vector 14) in {ring} mode at {data.addr:#x}: {fault_code_text(data.err)}; %cr2 = {data.addr:#x}"
    )


@words.register
def _(data: ev.TrapframeBuilt) -> str:
    if data.user:
        return f"tf_trapno = {data.trapno}, tf_err = {data.err:#x}, tf_addr = %cr2 = {data.addr:#x}"
    return f"from kernel mode: no swapgs; tf_rip = {data.rip:#x}, tf_addr = {data.addr:#x}"


@words.register
def _(data: ev.KernelIretq) -> str:
    resumed = "pcb_onfault, the copy routine's fault label" if data.onfault else "the faulting instruction"
    return f"back to ring 0 at {data.rip:#x} ({resumed})"


@words.register
def _(data: ev.OnFaultResume) -> str:
    return f"resume at {data.rip:#x}: the copy routine returns EFAULT"


@words.register
def _(data: ev.Panic) -> str:
    return data.message


# -- copies between the kernel and user memory, and userland's own access ------------------------------------------


@words.register
def _(data: ev.CopyFault) -> str:
    routine, va = data.routine, data.va
    if routine in ("copyin", "copyout"):
        if not data.in_range:
            why = f"{va:#x} + {data.size} is above VM_MAXUSER_ADDRESS"
        else:
            why = f"the page at {va:#x} " + ("could not be made writable" if data.write else "is not readable")
    elif routine == "copyinstr":
        why = f"{va:#x} is above VM_MAXUSER_ADDRESS" if not data.in_range else f"the page at {va:#x} is not readable"
    elif not data.in_range:
        why = f"{routine}: {va:#x} is above VM_MAXUSER_ADDRESS - {data.size}"
    else:
        why = f"{routine}: {va:#x} is not {'writable' if data.write else 'readable'}"
    return f"{why}: return EFAULT"


@words.register
def _(data: ev.UserCopy) -> str:
    return f"{data.n} bytes {'to' if data.to_user else 'from'} user {data.va:#x} (frame {data.frame:#x})"


@words.register
def _(data: ev.UserFetched) -> str:
    return f"{data.value:#x} from user {data.va:#x}"


@words.register
def _(data: ev.KernelDeref) -> str:
    return f"the kernel dereferences {data.va:#x}"


@words.register
def _(data: ev.UserAccess) -> str:
    if data.access == "fill":
        return f"{data.n} bytes of {data.byte:#04x} at {data.va:#x} (frame {data.frame:#x})"
    return f"{data.n} bytes {'to' if data.access == 'store' else 'from'} {data.va:#x} (frame {data.frame:#x})"


@words.register
def _(data: ev.UserTouch) -> str:
    if data.access == "fetch":
        return f"instruction fetch at {data.va:#x} -> {data.pa:#x}"
    return f"{data.access} {data.va:#x} -> {data.pa:#x}"
