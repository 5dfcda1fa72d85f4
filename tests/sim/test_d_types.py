"""D's type system: declarations, C's types and operators over them, and the kernel's own structures, each checked
by what a program prints over a real run of the simulator (or by the compile error libdtrace would give)."""

from __future__ import annotations

import pytest

from sim.narrative import detail
from sim.trace.d_parser import DtraceError
from sim.trace.dtrace import compile_script, run_dtrace

COMMAND = "getpid 1"


def printed(program: str, command: str = COMMAND) -> str:
    """What a -q program prints tracing `command` (without dtrace's final newline)."""
    result = run_dtrace(program, command, quiet=True)
    assert result.stderr.count("error on enabled probe") == 0, result.stderr
    return result.output.rstrip("\n")


def refused(program: str) -> str:
    with pytest.raises(DtraceError) as caught:
        compile_script(program, "types.d")
    return caught.value.message.split(": ", 2)[-1]


def test_structs_and_unions_are_laid_out_as_c_lays_them_out():
    program = """
    struct rec { char c; int i; short s; long l; } r;
    union u { char c; int i; long l; } v;
    struct bits { int a : 1; int b : 3; int c : 12; } bf;
    BEGIN {
        printf("%d %d %d %d\\n", sizeof (struct rec), offsetof(struct rec, i), offsetof(struct rec, l), sizeof (v));
        v.i = 0x1234; r.c = 'x'; r.l = 1 << 40;
        bf.b = 7; bf.c = -2;
        printf("%x %d %c %d %d %d\\n", v.c, v.l, r.c, r.l == 1 << 40, bf.b, bf.c);
        exit(0);
    }"""
    assert printed(program) == "24 4 16 8\n34 4660 x 1 -1 -2"


def test_arrays_pointers_and_pointer_arithmetic_share_the_programs_memory():
    program = """
    int a[5];
    int *p;
    BEGIN {
        a[0] = 10; a[3] = 40;
        p = a;
        q = &a[3];
        *(p + 1) = 20;
        printf("%d %d %d %d %d\\n", a[1], p[3], *q, q - p, (uintptr_t)q - (uintptr_t)p);
        exit(0);
    }"""
    assert printed(program) == "20 40 40 3 12"


def test_enums_typedefs_inlines_and_casts():
    program = """
    enum colour { RED, GREEN = 5, BLUE };
    typedef unsigned char byte_t;
    typedef struct pair { int x; int y; } pair_t;
    inline int seven = 3 + 4;
    inline int add[int x, int y] = x + y;  /* not sum: a D function's name (D_DECL_IDRED) */
    pair_t pr;
    BEGIN {
        pr.y = BLUE;
        printf("%d %d %d %d %d %d\\n", RED, pr.y, (byte_t)300, (char)255, seven, add[GREEN, 1]);
        printf("%d %d\\n", sizeof (pair_t), sizeof (byte_t));
        exit(0);
    }"""
    # (char)255 is folded as dt_parser.c folds it (a logical shift): 255, as the suite's printf/tst.ints.d prints
    # (char)0x1234567890abcdef with %d as 239
    assert printed(program) == "0 6 44 255 7 6\n8 1"


def test_typed_globals_and_self_this_declarations_convert_as_c_does():
    program = """
    unsigned char c;
    short s;
    self int n;
    this struct pt { int x; } here;
    BEGIN {
        c = 257; s = 70000; self->n = 0x100000001;
        this->here.x = 12;
        printf("%d %d %d %d\\n", c, s, self->n, this->here.x);
        exit(0);
    }"""
    assert printed(program) == "1 4464 1 12"


def test_a_struct_is_copied_by_assignment():
    program = """
    struct rec { int a; int b; } one, two;
    BEGIN { one.a = 1; one.b = 2; two = one; one.a = 9; this->c = two; printf("%d %d %d\\n", two.a, two.b, this->c.b);
            exit(0); }"""
    assert printed(program) == "1 2 2"


def test_an_invalid_address_is_a_runtime_error_of_the_clause():
    result = run_dtrace("BEGIN { p = (int *)8; trace(*p); } BEGIN { exit(0); }", COMMAND, quiet=True)
    assert "invalid address (0x8) in action #2" in result.stderr
    assert result.exit_status == 0


def test_curthread_reads_the_firing_threads_real_ids():
    program = """
    syscall::getpid:entry {
        printf("%d %d %s %s\\n", curthread->td_proc->p_pid, curthread->td_tid,
               stringof(curthread->td_proc->p_comm), curthread->td_name);  /* %s reads a char array */
    }
    syscall::getpid:entry { printf("%d %d %s\\n", pid, tid, execname); }"""
    kernel_view, builtins = printed(program).split("\n")
    pid, tid, comm = builtins.split()
    assert kernel_view == f"{pid} {tid} {comm} {comm}"
    assert comm == "getpid" and int(pid) != 0


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("int a[]; BEGIN { }", "array declaration requires array dimension or tuple signature: a"),
        ("int a[-7]; BEGIN { }", "positive integral constant expression or tuple signature expected"),
        ("struct s { int a : 0; }; BEGIN { }", "positive integral constant expression expected as bit-field size"),
        ("struct s { char a : 10; }; BEGIN { }", "bit-field too big for type: a"),
        ("enum e { x = 2147483648 }; BEGIN { }", "enumerator 'x' value overflows INT_MAX (2147483647)"),
        ("enum e { x, x }; BEGIN { }", "failed to define enumerator 'x': Duplicate member or variable name"),
        ("long struct s { int i; }; BEGIN { }", "long and long long may only be used with integer"),
        ("BEGIN { i = (unsigned unsigned int)0; }", "invalid type combination"),
        ("BEGIN { i = (char long)0; }", "short and long may not be used with char type"),
        ("self this int x; BEGIN { }", "only one storage class allowed in a declaration"),
        ("typedef int t; typedef char t; BEGIN { }", "typedef redeclared: t"),
        ("union u { union v p; }; BEGIN { }", "incomplete struct/union/enum union v: p"),
        ("int i; BEGIN { p = &i; }", "cannot take address of dynamic variable"),
        ("BEGIN { trace(&1); }", "unacceptable operand for unary & operator"),
        ("int x; BEGIN { b = *x; }", "cannot dereference non-pointer type"),
        ("void *p; BEGIN { b = *p; }", "cannot dereference pointer to void"),
        ("struct s { int a; } v; BEGIN { v->a = 1; }", "operator -> must be applied to a pointer"),
        ("struct s { int a; } v; BEGIN { v.b = 1; }", "b is not a member of struct s"),
        ("BEGIN { trace(offsetof(int, x)); }", "offsetof operand must be a struct or union type"),
        ("BEGIN { trace(123 / (7 - 7)); }", "expression contains division by zero"),
        ("int x[5]; BEGIN { x[1, 2] = 1; }", "cannot access x as an associative array"),
        ("inline int foo = foo + 3; BEGIN { }", "failed to resolve foo: Unknown variable name"),
        ("struct s { int a : 3; } v; BEGIN { trace(sizeof (v.a)); }", "cannot apply sizeof to a bit-field"),
    ],
)
def test_bad_declarations_and_operands_are_refused_in_libdtraces_words(program, message):
    assert message in refused(program)


def test_fbt_args_are_the_modelled_functions_arguments_as_they_were_at_entry():
    """L41's Lab 2 pattern: pipe_write's struct file leads to its pipe, whose peer's buffer the write fills."""
    program = """
    fbt::pipe_write:entry /execname == "ipc-static"/ {
        this->pipe = (struct pipe *)args[0]->f_data;
        @peer_size = max(this->pipe->pipe_peer->pipe_buffer.size);
        @resid[args[1]->uio_resid] = count();
        @who[args[2]->td_proc->p_pid == pid, args[2]->td_tid == tid, arg0 == (uintptr_t)args[0]] = count();
    }
    syscall::write:entry /execname == "ipc-static"/ { @writes = count(); }
    END { printa("%@d\\n", @peer_size); printa("%d %@d\\n", @resid); printa("%d %d %d %@d\\n", @who);
          printa("%@d\\n", @writes); }"""
    lines = printed(program, "ipc-static -q -i pipe -b 4096 -t 65536 2thread").split("\n")
    assert lines == ["16384", "4096 16", "1 1 1 16", "16"]


def test_fbt_args_are_typed_by_the_functions_parameters():
    assert "args[5] is out of range for fbt:kernel:pipe_write:entry" in refused(
        "fbt::pipe_write:entry { trace(args[5]); }"
    )
    assert 'operator -> cannot be applied to pointer to type "void"' in refused(
        "fbt::pipe_write:entry { trace(args[0]->f_data->cnt); }"
    )
    assert compile_script("fbt::pipe_write:entry { trace(arg1); }").program.fbt_arguments == {"pipe_write"}
    assert compile_script("fbt::pipe_write:entry { trace(1); }").program.fbt_arguments == frozenset()


def test_translators_fill_a_struct_from_their_input():
    program = """
    struct in { int a; char b; };
    struct out { int sum; char copy; };
    translator struct out < struct in *p > { sum = p->a + 1; copy = p->b; };
    struct in *x;
    BEGIN {
        x = (struct in *)alloca(sizeof (struct in));
        x->a = 41; x->b = 'k';
        printf("%d %c %d\\n", xlate < struct out > (x).sum, xlate < struct out * > (x)->copy, sizeof (struct out));
        exit(0);
    }"""
    assert printed(program) == "42 k 8"
    assert 'cannot translate from "int" to "struct out"' in refused(
        "struct out { int a; }; translator struct out < char *p > { a = 1; }; BEGIN { trace(xlate<struct out>(1).a); }"
    )
    assert "translator member b is not a member of struct out" in refused(
        "struct out { int a; }; translator struct out < int p > { b = p; };"
    )


def test_fbt_args_follow_the_kernels_structures_whatever_the_objects_class():
    """trap()'s frame is a KernelTrapframe for a fault in the kernel: still a struct trapframe to D."""
    program = """
    fbt::trap:entry { @kinds[args[0]->tf_trapno, args[0]->tf_err & 4] = count(); }
    fbt::trap_pfault:entry { @faults = count(); }
    fbt::pipe_write:entry { @rax[args[2]->td_frame->tf_rax] = count(); }
    END { printa("%d %d %@d\\n", @kinds); printa("%@d\\n", @faults); printa("%d %@d\\n", @rax); }"""
    lines = printed(program, "ipc-static -q -i pipe -b 4096 -t 16384 2thread").split("\n")
    # Every trap is a page fault (T_PAGEFLT, 12): one in the kernel (PGEX_U clear: copyin), nine in user mode.
    assert lines[:3] == ["12 0 1", "12 4 9", "10"]
    assert lines[3] == "4 4"  # pipe_write runs inside write(2): the saved %rax is SYS_write, 4


def test_module_scoped_tags_function_pointers_and_solaris_type_names():
    program = """
    struct f { void (*g)(); int a; };
    BEGIN { printf("%d %d %d %d\\n", offsetof(struct D`f, a), sizeof (hrtime_t), sizeof (ipaddr_t),
                   (u_longlong_t)-1 > 0); exit(0); }"""
    assert printed(program) == "8 8 4 1"
    assert "no such module: genunix" in refused("BEGIN { trace(sizeof (struct genunix`f)); }")


def test_an_armed_runs_entry_events_carry_the_arguments_in_words():
    result = run_dtrace("fbt::pipe_write:entry { trace(arg1); }", "ipc-static -q -i pipe -b 4096 -t 8192 2thread")
    entry = next(e for e in result.run.events if e.kind == "enter" and e.name == "pipe_write")
    assert detail(entry) == (
        f"called with struct file at {entry.data.values[0].address:#x}, struct uio at "
        f"{entry.data.values[1].address:#x}, struct thread at {entry.data.values[2].address:#x} "
        "(recorded for DTrace's fbt args[])"
    )
    plain = next(e for e in result.run.events if e.kind == "enter" and e.name == "pipe_read")
    assert plain.data is None  # an unarmed function's entry records nothing


def test_a_declared_associative_array_holds_its_declared_type():
    program = """
    int64_t val[int];
    string name[int, string];
    BEGIN {
        val[1] = 1LL << 40;
        name[2, "x"] = "two";
        printf("%d %s %d", val[1], name[2, "x"], val[7]);
        exit(0);
    }"""
    assert printed(program) == "1099511627776 two 0"


def test_an_inline_may_not_take_a_d_functions_name():
    assert "identifier redefined: rand\n\t current: inline definition" in refused("inline int rand = 7;")
