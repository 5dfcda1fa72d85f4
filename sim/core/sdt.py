"""Statically defined tracing probe sites (sys/sys/sdt.h's SDT_PROBE): what an enabled DTrace SDT probe costs where
the kernel fires it. Every layer has probe sites (proc:::create in kern, vminfo in vm), so they sit here."""

from __future__ import annotations

from sim.core.pcpu import pcpu


def sdt_fire(provider: str, names: tuple[str, ...]) -> None:
    """An SDT probe site: each of these probes that is enabled costs a firing (nothing when no probe is armed)."""
    hook = pcpu.machine.log.probe_hook
    if hook is not None:
        hook.sdt(provider, names)
