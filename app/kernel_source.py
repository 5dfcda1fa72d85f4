"""Short pseudo-source of the modelled kernel functions, in FreeBSD 11's names, as data for the source view.

Each function is a few lines that read like its C (or assembly) in the file named. A line may end in `#@` and
the event keys it stands for, so the view can mark the line the current step is on, and which hooks of this
invocation ran or were skipped:

    call:NAME    the call of NAME (its enter and exit events)
    hook:NAME    a hook that runs when its flag is set and is skipped otherwise (hook and skip events)
    KIND:NAME    any other event, e.g. insn:swapgs, mem:page zeroed, fault:* (any name)

Nothing here decides what happens: the simulator does (sim/kern, sim/vm); this is only how it is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class SourceLine:
    text: str
    keys: tuple[str, ...]  # event keys (see the module docstring) this line stands for


@dataclass(frozen=True)
class Source:
    function: str
    file: str
    lines: tuple[SourceLine, ...]


_SOURCES = {
    # -- the system-call path (amd64/amd64/exception.S, amd64/amd64/trap.c, kern/subr_syscall.c) --------------------
    ("Xfast_syscall", "sys/amd64/amd64/exception.S"): """
IDTVEC(fast_syscall)
    swapgs                          /* %gs -> this CPU's pcpu */       #@ insn:swapgs
    movq    PCPU(RSP0),%rsp         /* the thread's kernel stack */    #@ insn:movq_PCPU(RSP0),%rsp
    /* save rip (%rcx), rflags (%r11), rsp and the GPRs: the trapframe */ #@ insn:build_trapframe
    sti                                                                #@ insn:sti
    call    amd64_syscall                                              #@ call:amd64_syscall
    cli                             /* decide how to return */         #@ insn:cli
    testl   $TDF_ASTPENDING|TDF_NEEDRESCHED,TD_FLAGS(%rax)             #@ hook:ast insn:sti
    /* restore registers from the trapframe */                         #@ insn:restore_registers
    swapgs                          /* the user's %gs */
    sysretq                         /* ring 0 -> ring 3 at %rcx */     #@ insn:sysretq
""",
    ("amd64_syscall", "sys/amd64/amd64/trap.c"): """
void amd64_syscall(struct thread *td, int traced)
{
    error = syscallenter(td);                                          #@ call:syscallenter
    syscallret(td, error);                                             #@ call:syscallret
}
""",
    ("syscallenter", "sys/kern/subr_syscall.c"): """
static inline int syscallenter(struct thread *td)
{
    /* FreeBSD 11's thread_cow_update; 10.x and the lecture's slide call it cred_update_thread */
    if (td->td_cowgen != p->p_cowgen) thread_cow_update(td); #@ hook:thread_cow_update call:thread_cow_update
    error = (p->p_sysent->sv_fetch_syscall_args)(td);                  #@ call:cpu_fetch_syscall_args
    if (KTRPOINT(td, KTR_SYSCALL)) ktrsyscall(sa->code, ...);          #@ hook:ktrsyscall call:ktrsyscall
    if (p->p_flag & P_TRACED) ptracestop(td, SIGTRAP);                 #@ hook:ptracestop call:ptracestop
    if (IN_CAPABILITY_MODE(td) && !(sa->callp->sy_flags & SYF_CAPENABLED)) return (ECAPMODE); #@ hook:IN_CAPABILITY_MODE
    error = syscall_thread_enter(td, sa->callp);                       #@ hook:syscall_thread_enter
    if (systrace_probe_func) (*systrace_probe_func)(sa, SYSTRACE_ENTRY, 0); #@ hook:systrace_probe_func call:systrace_*
    AUDIT_SYSCALL_ENTER(sa->code, td); #@ hook:AUDIT_SYSCALL_ENTER call:audit_syscall_enter
    error = (sa->callp->sy_call)(td, sa->args);   /* the system call */ #@ syscall:* call:sys_*
    AUDIT_SYSCALL_EXIT(error, td); #@ hook:AUDIT_SYSCALL_EXIT call:audit_syscall_exit
    syscall_thread_exit(td, sa->callp);                                #@ hook:syscall_thread_exit
    (p->p_sysent->sv_set_syscall_retval)(td, error);                   #@ call:cpu_set_syscall_retval
    return (error);
}
""",
    ("cpu_fetch_syscall_args", "sys/amd64/amd64/trap.c"): """
int cpu_fetch_syscall_args(struct thread *td)
{
    sa->code = frame->tf_rax;                                          #@ hook:sv_fetch_syscall_args
    sa->callp = &p->p_sysent->sv_table[sa->code];
    memcpy(sa->args, &frame->tf_rdi, 6 * sizeof(register_t));         /* rdi rsi rdx r10 r8 r9 */
    if (sa->narg > 6) error = copyin(params, &sa->args[6], ...);       #@ call:copyin
    td->td_retval[0] = 0; td->td_retval[1] = frame->tf_rdx;
}
""",
    ("cpu_set_syscall_retval", "sys/amd64/amd64/vm_machdep.c"): """
void cpu_set_syscall_retval(struct thread *td, int error)
{
    switch (error) {
    case 0:  frame->tf_rax = td->td_retval[0]; frame->tf_rflags &= ~PSL_C; break; #@ sysret:success
    case ERESTART: frame->tf_rip -= frame->tf_err; break;  /* run syscall again */ #@ sysret:ERESTART
    case EJUSTRETURN: break;                                           #@ sysret:EJUSTRETURN
    default: frame->tf_rax = error; frame->tf_rflags |= PSL_C; break;  /* libc: errno */ #@ sysret:error
    }
}
""",
    ("syscallret", "sys/kern/subr_syscall.c"): """
static inline void syscallret(struct thread *td, int error)
{
    userret(td, td->td_frame);                                         #@ call:userret
    if (KTRPOINT(td, KTR_SYSRET)) ktrsysret(sa->code, error, ...);     #@ hook:ktrsysret call:ktrsysret
    if (traced && (td->td_dbgflags & TDB_SCX)) ptracestop(td, SIGTRAP); #@ hook:ptracestop call:ptracestop
    if (td->td_pflags & TDP_RFPPWAIT) { /* vfork: wait for the child */ } #@ hook:vfork_wait
}
""",
    ("userret", "sys/kern/subr_trap.c"): """
void userret(struct thread *td, struct trapframe *frame)
{
    KTRUSERRET(td);                                                    #@ hook:KTRUSERRET call:ktruserret
    if (td->td_pflags & TDP_GEOM) g_waitidle();                        #@ hook:g_waitidle call:g_waitidle
    if (p->p_flag & P_PROFIL) addupc_task(td, TRAPF_PC(frame), ...);   #@ hook:addupc_task call:addupc_task
    sched_userret(td);          /* the scheduler adjusts priorities */ #@ call:sched_userret
    while (p->p_throttled) msleep(p->p_racct, ..., "racct", 0);        #@ hook:racct_throttle call:racct_throttle
}
""",
    ("ast", "sys/kern/subr_trap.c"): """
void ast(struct trapframe *framep)
{
    flags = td->td_flags; td->td_flags &= ~(TDF_ASTPENDING | ...);     #@ hook:ast
    if (flags & TDF_ALRMPEND) kern_psignal(p, SIGVTALRM);              #@ hook:SIGVTALRM
    if (flags & TDF_PROFPEND) kern_psignal(p, SIGPROF);                #@ hook:SIGPROF
    if (flags & TDF_NEEDRESCHED) mi_switch(SW_INVOL | SWT_NEEDRESCHED, NULL); #@ hook:mi_switch call:mi_switch
    while ((sig = cursig(td)) != 0) postsig(sig);                      #@ hook:postsig call:postsig
    if (flags & TDF_NEEDSUSPCHK) thread_suspend_check(0);              #@ hook:thread_suspend_check
    if (td->td_pflags & TDP_OLDMASK) { /* restore the signal mask */ } #@ hook:TDP_OLDMASK
    userret(td, framep);                                               #@ call:userret
}
""",
    ("sys_getpid", "sys/kern/kern_prot.c"): """
int sys_getpid(struct thread *td, struct getpid_args *uap)
{
    td->td_retval[0] = p->p_pid;
    return (0);
}
""",
    # -- traps and page faults (amd64/amd64/exception.S, trap.c, vm/vm_fault.c) ----------------------------------
    ("Xpage", "sys/amd64/amd64/exception.S"): """
IDTVEC(page)
    testb   $SEL_RPL_MASK,TF_CS(%rsp)   /* from user mode? */
    swapgs                              /* then %gs -> pcpu */         #@ insn:swapgs
    movq    %cr2,%rdi; movq %rdi,TF_ADDR(%rsp)  /* the faulting VA */ #@ insn:build_trapframe
    call    trap                                                       #@ call:trap
    jmp     doreti
""",
    ("trap", "sys/amd64/amd64/trap.c"): """
void trap(struct trapframe *frame)
{
    VM_CNT_INC(v_trap);
    if (ISPL(frame->tf_cs) == SEL_UPL) {          /* from user mode */
        case T_PAGEFLT: i = trap_pfault(frame, TRUE); /* 0: resolved */ #@ call:trap_pfault
        if (i == 0) goto user;  else trapsignal(td, &ksi); /* SIGSEGV */ #@ signal:* call:trapsignal
    } else {                                      /* from kernel mode */
        case T_PAGEFLT: (void) trap_pfault(frame, FALSE); /* pcb_onfault */
    }
user:
    userret(td, frame);                                                #@ call:userret
}
""",
    ("trap_pfault", "sys/amd64/amd64/trap.c"): """
static int trap_pfault(struct trapframe *frame, int usermode)
{
    eva = frame->tf_addr;   va = trunc_page(eva);
    map = usermode || va < VM_MAXUSER_ADDRESS ? &p->p_vmspace->vm_map : kernel_map;
    if (!usermode && (frame->tf_err & PGEX_P) && SMAP violation) trap_fatal(); #@ panic:*
    ftype = frame->tf_err & PGEX_W ? VM_PROT_WRITE : VM_PROT_READ;
    rv = vm_fault(map, va, ftype, VM_FAULT_NORMAL);                    #@ call:vm_fault
    if (rv == KERN_SUCCESS) return (0);
    if (!usermode && curpcb->pcb_onfault != NULL) {
        frame->tf_rip = (long)curpcb->pcb_onfault; return (0);  /* copyin/copyout -> EFAULT */ #@ insn:*
    }
    return (usermode ? 1 : trap_fatal(frame, eva));                    #@ call:trap_fatal
}
""",
    ("vm_fault", "sys/vm/vm_fault.c"): """
int vm_fault(vm_map_t map, vm_offset_t vaddr, vm_prot_t fault_type, int fault_flags)
{
    VM_CNT_INC(v_vm_faults);
    vm_map_lookup(&map, vaddr, fault_type, &entry, &object, &pindex, ...); #@ call:vm_map_lookup
    for (;;) {                              /* walk the shadow chain */
        m = vm_page_lookup(object, pindex);  if (m != NULL) break;   /* resident: soft fault */
        if (object->type != OBJT_DEFAULT) { vm_pager_get_pages(...); break; } #@ call:vm_pager_get_pages
        if (object->backing_object == NULL) break;
        object = object->backing_object;    /* look in what this object shadows */
    }
    m = vm_page_alloc(object, pindex, VM_ALLOC_NORMAL | VM_ALLOC_ZERO); #@ call:vm_page_alloc
    if ((m->flags & PG_ZERO) == 0) pmap_zero_page(m);  /* demand-zero */ #@ call:pmap_zero_page
    else VM_CNT_INC(v_ozfod);                      /* already zero */
    if (write && m->object != fs.first_object) vm_fault_cow(&fs);  /* copy-on-write */ #@ call:vm_fault_cow
    pmap_enter(map->pmap, vaddr, m, prot, fault_type, 0);             #@ call:pmap_enter
    vm_fault_prefault(&fs, vaddr, ...);     /* map resident neighbours */ #@ call:vm_fault_prefault
    vm_page_activate(m);  return (KERN_SUCCESS);                       #@ fault:*
}
""",
    ("vm_map_lookup", "sys/vm/vm_map.c"): """
int vm_map_lookup(vm_map_t *var_map, vm_offset_t vaddr, vm_prot_t fault_typea, ...)
{
    if (!vm_map_lookup_entry(map, vaddr, out_entry)) return (KERN_INVALID_ADDRESS);
    if ((entry->protection & fault_type) != fault_type) return (KERN_PROTECTION_FAILURE);
    if (entry->eflags & MAP_ENTRY_NEEDS_COPY && (fault_type & VM_PROT_WRITE))
        vm_object_shadow(&entry->object.vm_object, &entry->offset, size); #@ call:vm_object_shadow
    if (entry->object.vm_object == NULL)    /* anonymous memory: made on first touch */
        entry->object.vm_object = vm_object_allocate(OBJT_DEFAULT, size); #@ call:vm_object_allocate
    *pindex = OFF_TO_IDX((vaddr - entry->start) + entry->offset);
}
""",
    ("vm_page_alloc", "sys/vm/vm_page.c"): """
vm_page_t vm_page_alloc(vm_object_t object, vm_pindex_t pindex, int req)
{
    if (vm_cnt.v_free_count <= vm_cnt.v_free_reserved) return (NULL);   /* the caller VM_WAITs */
    m = vm_reserv_alloc_page(object, pindex, mpred);  /* from a superpage reservation */ #@ call:vm_reserv_alloc_page
    if (m == NULL) m = vm_phys_alloc_pages(object != NULL ? VM_FREEPOOL_DEFAULT : ..., 0);
    if (req & VM_ALLOC_ZERO && m->flags & PG_ZERO) /* keep PG_ZERO: no need to zero it */ ;
    vm_page_insert_after(m, object, pindex, mpred);
    return (m);
}
""",
    ("pmap_zero_page", "sys/amd64/amd64/pmap.c"): """
void pmap_zero_page(vm_page_t m)
{
    vm_offset_t va = PHYS_TO_DMAP(VM_PAGE_TO_PHYS(m));   /* the direct map */
    pagezero((void *)va);                                              #@ call:pagezero
}
""",
    ("pagezero", "sys/amd64/amd64/support.S"): """
ENTRY(pagezero)
    movq    $PAGE_SIZE/8,%rcx
    xorl    %eax,%eax
    rep stosq                   /* 512 x 8 bytes of zero: the cost that dd's time(1) sees */ #@ mem:page_zeroed
    ret
""",
    ("pmap_enter", "sys/amd64/amd64/pmap.c"): """
int pmap_enter(pmap_t pmap, vm_offset_t va, vm_page_t m, vm_prot_t prot, u_int flags, int8_t psind)
{
    newpte = VM_PAGE_TO_PHYS(m) | PG_V | (prot & VM_PROT_WRITE ? PG_RW : 0) | PG_U | PG_A | pg_nx;
    pde = pmap_pde(pmap, va);  if (pde == NULL) mpte = _pmap_allocpte(pmap, va); #@ call:vm_page_alloc mem:PDE mem:PDPTE
    origpte = pte_load_store(pte, newpte);                             #@ mem:PTE
    if (origpte & PG_V) pmap_invalidate_page(pmap, va);   /* no stale TLB entry */ #@ insn:invlpg
    if (mpte->wire_count == NPTEPG && reservation full) pmap_promote_pde(pmap, pde, va); #@ call:pmap_promote_pde
    return (KERN_SUCCESS);
}
""",
    ("pmap_promote_pde", "sys/amd64/amd64/pmap.c"): """
static void pmap_promote_pde(pmap_t pmap, pd_entry_t *pde, vm_offset_t va, ...)
{
    /* all 512 PTEs map contiguous, aligned frames with the same bits? */
    newpde = (firstpte & PG_FRAME) | PG_PS | (firstpte & PG_PTE_PROMOTE);
    pmap_update_pde(pmap, va, pde, newpde);   /* one 2 MiB mapping */  #@ mem:PDE mem:promotion
    invltlb();                                                         #@ insn:movq_%cr3,%cr3
}
""",
    ("vm_fault_cow", "sys/vm/vm_fault.c"): """
static void vm_fault_cow(struct faultstate *fs)
{
    /* the page is in a backing object: this process gets its own copy */
    pmap_copy_page(fs->m, fs->first_m);                                #@ call:pmap_copy_page
    VM_CNT_INC(v_cow_faults);
}
""",
    ("pmap_copy_page", "sys/amd64/amd64/pmap.c"): """
void pmap_copy_page(vm_page_t msrc, vm_page_t mdst)
{
    pagecopy((void *)PHYS_TO_DMAP(VM_PAGE_TO_PHYS(msrc)), (void *)PHYS_TO_DMAP(VM_PAGE_TO_PHYS(mdst))); #@ call:pagecopy
}
""",
    ("pagecopy", "sys/amd64/amd64/support.S"): """
ENTRY(pagecopy)
    movq    $PAGE_SIZE/8,%rcx
    rep movsq                   /* 4 KiB from the shared page to the private one */ #@ mem:page_copied
    ret
""",
    ("vm_object_shadow", "sys/vm/vm_object.c"): """
void vm_object_shadow(vm_object_t *object, vm_ooffset_t *offset, vm_size_t length)
{
    result = vm_object_allocate(OBJT_DEFAULT, atop(length));           #@ call:vm_object_allocate
    result->backing_object = source;  /* the new object shadows the old one */ #@ mem:vm_object_shadow
    *object = result;
}
""",
    ("vm_object_allocate", "sys/vm/vm_object.c"): """
vm_object_t vm_object_allocate(objtype_t type, vm_pindex_t size)
{
    object = (vm_object_t)uma_zalloc(obj_zone, M_WAITOK);
    _vm_object_allocate(type, size, object);   /* ref_count 1, no pages yet */
    return (object);
}
""",
    ("doreti", "sys/amd64/amd64/exception.S"): """
ENTRY(doreti)
    cli
    testl   $TDF_ASTPENDING|TDF_NEEDRESCHED,TD_FLAGS(%rax)  /* an AST? */ #@ hook:ast call:ast
    /* doreti_exit: restore every register from the trapframe */       #@ insn:restore_all_registers
    swapgs                                                             #@ insn:swapgs
    iretq                       /* back to the faulting instruction */ #@ insn:iretq
""",
    # -- copying across the user/kernel boundary (amd64/amd64/support.S) --------------------------------------------
    ("copyout", "sys/amd64/amd64/support.S"): """
ENTRY(copyout_smap)
    movq    PCPU(CURPCB),%rax; movq $copyout_fault,PCB_ONFAULT(%rax)   /* a fault returns EFAULT */
    /* udaddr + len must not wrap and must be <= VM_MAXUSER_ADDRESS */
    stac                        /* let the kernel touch user pages (SMAP) */ #@ insn:stac
    rep movsq #@ mem:copyout tlb:* walk:* trap:* call:Xpage
    clac                                                               #@ insn:clac
    movq    $0,PCB_ONFAULT(%rdx); xorl %eax,%eax; ret                  /* 0: copied */
""",
    ("copyin", "sys/amd64/amd64/support.S"): """
ENTRY(copyin_smap)
    movq    $copyin_fault,PCB_ONFAULT(%rax)                            /* a fault returns EFAULT */
    /* uaddr + len must not wrap and must be <= VM_MAXUSER_ADDRESS */
    stac                                                               #@ insn:stac
    rep movsq                                                          #@ mem:copyin tlb:* walk:* trap:* call:Xpage
    clac                                                               #@ insn:clac
    xorl    %eax,%eax; ret
""",
    ("copyinstr", "sys/amd64/amd64/support.S"): """
ENTRY(copyinstr_smap)
    movq    $cpystrflt,PCB_ONFAULT(%r9)
    stac                                                               #@ insn:stac
    lodsb; stosb; until NUL or maxlen   /* ENAMETOOLONG past maxlen */ #@ mem:copyinstr
    clac                                                               #@ insn:clac
""",
    # -- read and write on /dev/zero and /dev/null (kern/sys_generic.c, kern/vfs_vnops.c, dev/null/null.c) ---------
    ("sys_read", "sys/kern/sys_generic.c"): """
int sys_read(struct thread *td, struct read_args *uap)
{
    aiov.iov_base = uap->buf; aiov.iov_len = uap->nbyte;
    auio.uio_segflg = UIO_USERSPACE; auio.uio_rw = UIO_READ;
    error = kern_readv(td, uap->fd, &auio);                            #@ call:dofileread
    return (error);
}
""",
    ("dofileread", "sys/kern/sys_generic.c"): """
static int dofileread(struct thread *td, int fd, struct file *fp, struct uio *auio, ...)
{
    cnt = auio->uio_resid;
    error = fo_read(fp, auio, td->td_ucred, flags, td);                #@ call:vn_read
    td->td_retval[0] = cnt - auio->uio_resid;   /* bytes read */
}
""",
    ("vn_read", "sys/kern/vfs_vnops.c"): """
static int vn_read(struct file *fp, struct uio *uio, struct ucred *active_cred, int flags, ...)
{
    error = VOP_READ(vp, uio, ioflag, fp->f_cred);   /* /dev/zero: zero_read */ #@ call:zero_read call:ffs_read
}
""",
    ("zero_read", "sys/dev/null/null.c"): """
static int zero_read(struct cdev *dev, struct uio *uio, int flags)
{
    while (uio->uio_resid > 0 && error == 0) {
        len = uio->uio_resid; if (len > ZERO_REGION_SIZE) len = ZERO_REGION_SIZE; /* 2 MiB */
        error = uiomove(__DECONST(void *, zero_region), len, uio);     #@ call:uiomove
    }
}
""",
    ("uiomove", "sys/kern/subr_uio.c"): """
int uiomove(void *cp, int n, struct uio *uio)
{
    switch (uio->uio_segflg) {
    case UIO_USERSPACE:
        if (uio->uio_rw == UIO_READ) error = copyout(cp, iov->iov_base, cnt); #@ call:copyout
        else error = copyin(iov->iov_base, cp, cnt);                   #@ call:copyin
    }
}
""",
    ("sys_write", "sys/kern/sys_generic.c"): """
int sys_write(struct thread *td, struct write_args *uap)
{
    auio.uio_segflg = UIO_USERSPACE; auio.uio_rw = UIO_WRITE;
    error = kern_writev(td, uap->fd, &auio);                           #@ call:dofilewrite
}
""",
    ("dofilewrite", "sys/kern/sys_generic.c"): """
static int dofilewrite(struct thread *td, int fd, struct file *fp, struct uio *auio, ...)
{
    error = fo_write(fp, auio, td->td_ucred, flags, td);               #@ call:vn_write
    td->td_retval[0] = cnt - auio->uio_resid;
}
""",
    ("vn_write", "sys/kern/vfs_vnops.c"): """
static int vn_write(struct file *fp, struct uio *uio, struct ucred *active_cred, int flags, ...)
{
    error = VOP_WRITE(vp, uio, ioflag, fp->f_cred); #@ call:null_write call:ttydev_write call:ffs_write
}
""",
    ("null_write", "sys/dev/null/null.c"): """
static int null_write(struct cdev *dev, struct uio *uio, int flags)
{
    uio->uio_resid = 0;     /* everything "written": nothing is copied */
    return (0);
}
""",
    # -- mmap and exit (vm/vm_mmap.c, kern/kern_exit.c) ---------------------------------------------------------------
    ("sys_mmap", "sys/vm/vm_mmap.c"): """
int sys_mmap(struct thread *td, struct mmap_args *uap)
{
    return (kern_mmap(td, uap->addr, uap->len, uap->prot, uap->flags, uap->fd, uap->pos)); #@ call:kern_mmap
}
""",
    ("kern_mmap", "sys/vm/vm_mmap.c"): """
int kern_mmap(struct thread *td, uintptr_t addr0, size_t size, int prot, int flags, int fd, off_t pos)
{
    if (flags & MAP_ANON) { handle = NULL; /* anonymous: demand-zero on touch */ }
    else { /* a file: its vnode's object */ }                          #@ call:vnode_pager_alloc
    error = vm_mmap_object(&vms->vm_map, &addr, size, prot, maxprot, flags, object, pos, ...); #@ call:vm_mmap_object
    td->td_retval[0] = (register_t)(addr + pageoff);   /* no page is touched yet */
}
""",
    ("vm_map_insert", "sys/vm/vm_map.c"): """
int vm_map_insert(vm_map_t map, vm_object_t object, vm_ooffset_t offset, vm_offset_t start, vm_offset_t end, ...)
{
    new_entry = vm_map_entry_create(map);
    new_entry->start = start; new_entry->end = end; new_entry->object.vm_object = object;
    vm_map_entry_link(map, prev_entry, new_entry);                     #@ mem:vm_map_insert
    if (cow & MAP_PREFAULT) vm_map_pmap_enter(map, start, prot, object, ...); #@ call:vm_map_pmap_enter
}
""",
    ("sys_exit", "sys/kern/kern_exit.c"): """
void sys_sys_exit(struct thread *td, struct sys_exit_args *uap)
{
    exit1(td, uap->rval, 0);    /* never returns */                     #@ call:exit1
}
""",
    ("exit1", "sys/kern/kern_exit.c"): """
void exit1(struct thread *td, int rval, int signo)
{
    vmspace_exit(td);           /* free the address space */           #@ call:vmspace_exit
    p->p_state = PRS_ZOMBIE;    /* the parent's wait4 collects the status */ #@ proc:*
    thread_exit();              /* switch away for the last time */    #@ call:thread_exit
}
""",
}

# A user-mode step of a libc system-call stub (lib/libc/amd64/SYS.h), shown when no kernel frame is open.
LIBC_STUB = Source(
    "libc system-call stub",
    "lib/libc/amd64/SYS.h",
    (
        SourceLine("RSYSCALL(name):", ("user:call_*",)),
        SourceLine("    mov     $SYS_name,%eax          /* the system-call number */", ("user:mov_$SYS_*",)),
        SourceLine("    movq    %rcx,%r10               /* syscall overwrites %rcx */", ("user:movq_%rcx,%r10",)),
        SourceLine("    syscall                         /* ring 3 -> ring 0 */", ("insn:syscall",)),
        # sysretq lands here: %rip is the instruction after `syscall`, so the carry test is the next to run
        SourceLine(
            "    jb      cerror                  /* carry set: errno, -1 */",
            ("insn:sysretq", "user:jb_cerror", "user:cerror"),
        ),
        SourceLine("    ret", ("user:ret",)),
    ),
)

_KEYS = re.compile(r"\s+#@\s+(.*)$")


def _normalise(key: str) -> str:
    """Event keys use `_` where event names have spaces (`insn:build trapframe` -> `insn:build_trapframe`)."""
    return key.replace(" ", "_")


def _parse(function: str, file: str, text: str) -> Source:
    lines = []
    for raw in text.strip("\n").splitlines():
        found = _KEYS.search(raw)
        keys = tuple(found.group(1).split()) if found else ()
        lines.append(SourceLine((raw[: found.start()] if found else raw).rstrip(), keys))
    return Source(function, file, tuple(lines))


@cache
def sources() -> dict[str, Source]:
    return {function: _parse(function, file, text) for (function, file), text in _SOURCES.items()}


def key_matches(key: str, kind: str, name: str) -> bool:
    """Whether the line key `key` stands for an event of `kind` and `name`."""
    key_kind, _, pattern = key.partition(":")
    if key_kind == "call":
        if kind not in ("enter", "exit"):
            return False
    elif key_kind == "hook":
        if kind not in ("hook", "skip"):
            return False
    elif key_kind != kind:
        return False
    name = _normalise(name)
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def line_for(source: Source, kind: str, name: str) -> int | None:
    """The first line of `source` that stands for this event, or None."""
    for number, line in enumerate(source.lines):
        if any(key_matches(key, kind, name) for key in line.keys):
            return number
    return None
