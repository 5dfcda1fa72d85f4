"""No global machine state: what a run depends on belongs to its machine and kernel (reached through pcpu), so no
module of the simulator fills in another module's globals when it is imported (as trap.py once set
subr_syscall.sv_fetch_syscall_args) and no function rebinds a module global while a run goes on."""

from __future__ import annotations

import ast
from pathlib import Path

SIM = Path(__file__).resolve().parents[2] / "sim"


def _is_module(dotted: str) -> bool:
    path = SIM.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _module_names(tree: ast.Module) -> set[str]:
    """The names this module binds to other sim modules (import sim.x as y; from sim.kern import trap)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names if alias.name.startswith("sim")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sim"):
            names |= {alias.asname or alias.name for alias in node.names if _is_module(f"{node.module}.{alias.name}")}
    return names


def _patches(source: str, where: str) -> list[str]:
    tree = ast.parse(source, where)
    modules = _module_names(tree)
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            targets = [ast.Attribute(value=node.args[0], attr="?")] if node.args else []
        elif isinstance(node, ast.Global):
            found.append(f"{where}:{node.lineno}: global {', '.join(node.names)}")
        for target in targets:
            base = target
            while isinstance(base, ast.Attribute | ast.Subscript):
                base = base.value
            if target is not base and isinstance(base, ast.Name) and base.id in modules:
                found.append(f"{where}:{node.lineno}: sets {ast.unparse(target)}")
    return found


def test_no_module_sets_another_modules_globals_or_rebinds_its_own():
    found = [
        patch for path in sorted(SIM.rglob("*.py")) for patch in _patches(path.read_text(), str(path.relative_to(SIM)))
    ]
    assert found == []


def test_the_guard_sees_what_trap_py_once_did():
    source = "from sim.kern import subr_syscall\n\nsubr_syscall.sv_fetch_syscall_args = cpu_fetch_syscall_args\n"
    assert _patches(source, "trap.py") == ["trap.py:3: sets subr_syscall.sv_fetch_syscall_args"]
    assert _patches("def f():\n    global X\n    X = 1\n", "f.py") == ["f.py:2: global X"]
