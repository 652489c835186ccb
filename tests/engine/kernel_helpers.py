"""Helpers for tests that run simulations in the ``pool`` fixture's kernel."""

from __future__ import annotations

from sela_jupyter.engine.runner import KernelPool, SimulationPlan, SimulationResult, run_simulation


async def simulate(pool: KernelPool, plan: SimulationPlan) -> SimulationResult:
    """Run ``plan`` in a kernel of ``pool`` and give the kernel back as the result says."""
    kernel = await pool.acquire()
    result = await run_simulation(kernel, plan)
    pool.release(kernel, healthy=result.kernel_healthy)
    return result
