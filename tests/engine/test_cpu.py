"""One CPU budget per process: slots, thread shares, and two real runs sharing the cores."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path

import nbformat
import pandas as pd

from sela_jupyter.engine.codegen import TemplateCoder
from sela_jupyter.engine.cpu import CpuBudget
from sela_jupyter.engine.new_run import create_run
from sela_jupyter.engine.options import SearchOptions
from sela_jupyter.engine.search import Search
from sela_jupyter.engine.store import RunStore


def test_a_run_alone_gets_every_core_and_runs_together_share_them() -> None:
    budget = CpuBudget(cores=4)
    first = budget.join(parallel=1)
    assert budget.threads() == 4
    second = budget.join(parallel=1)
    assert budget.threads() == 2
    third = budget.join(parallel=3)  # more wished for than there are cores: one thread each
    assert budget.threads() == 1
    budget.leave(third)
    budget.leave(first)
    assert budget.threads() == 4 and budget.runs == 1
    budget.leave(second)


async def test_a_simulation_that_runs_alone_gets_its_runs_whole_share() -> None:
    budget = CpuBudget(cores=4)
    first = budget.join(parallel=4)
    async with budget.slot() as threads, budget.slot(alone=True) as root_threads:
        assert threads == 1  # one of four simulations at once
        assert root_threads == 4  # a root: nothing else of its run can run beside it
    second = budget.join(parallel=4)
    async with budget.slot(alone=True) as root_threads:
        assert root_threads == 2  # two runs: half the machine each
    budget.leave(first)
    budget.leave(second)


async def test_no_more_slots_than_cores_are_out_and_waiters_go_in_order() -> None:
    budget = CpuBudget(cores=2)
    out, most, order = 0, 0, []

    async def simulate(name: int) -> None:
        nonlocal out, most
        async with budget.slot():
            out += 1
            most = max(most, out)
            order.append(name)
            await asyncio.sleep(0.02)
            out -= 1

    await asyncio.gather(*(simulate(i) for i in range(8)))
    assert most == 2 and order == list(range(8))


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    budget = CpuBudget(cores=1)
    async with budget.slot():
        gave_up = asyncio.ensure_future(budget._acquire())
        await asyncio.sleep(0)
        gave_up.cancel()
        next_in_line = asyncio.ensure_future(budget._acquire())
        await asyncio.sleep(0)
    await asyncio.wait_for(next_in_line, 1)  # released to it, not lost on the cancelled one
    budget._release()
    async with budget.slot():  # and the slot is free again afterwards
        pass


def test_slots_are_shared_across_threads_with_their_own_loops() -> None:
    budget = CpuBudget(cores=1)
    lock, out, most = threading.Lock(), [0], [0]

    def run_in_own_loop() -> None:
        async def simulate() -> None:
            async with budget.slot():
                with lock:
                    out[0] += 1
                    most[0] = max(most[0], out[0])
                await asyncio.sleep(0.02)
                with lock:
                    out[0] -= 1

        async def three() -> None:
            await asyncio.wait_for(asyncio.gather(*(simulate() for _ in range(3))), 10)

        asyncio.run(three())

    threads = [threading.Thread(target=run_in_own_loop) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most[0] == 1


#: A model stage whose fit reports, from inside the kernel, the threads threadpoolctl sees and the
#: n_jobs it was asked to use, with when the fit ran.
PROBE = """\
from sklearn.linear_model import LinearRegression

class Probe(LinearRegression):
    def fit(self, X, y):
        import time
        from threadpoolctl import threadpool_info
        began = time.time()
        time.sleep(0.4)
        threads = max(pool["num_threads"] for pool in threadpool_info())
        print(f"probe threads={threads} n_jobs={self.n_jobs} from={began} to={time.time()}")
        return super().fit(X, y)

model = Probe(n_jobs=-1)"""


class ProbeCoder(TemplateCoder):
    """The template coder with :data:`PROBE` as every model stage."""

    def stage_code(self, stage, insight, path, profile, task):  # type: ignore[override]
        if stage == "model":
            return PROBE
        return super().stage_code(stage, insight, path, profile, task)


def probes(store: RunStore, run_id: str) -> list[tuple[int, int, float, float]]:
    """(threads, n_jobs, from, to) of every probed fit in the run's node notebooks."""
    found = []
    for path in store.run_dir(run_id).glob("nodes/*/notebook.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                for match in re.finditer(
                    r"probe threads=(\d+) n_jobs=(-?\d+) from=([\d.]+) to=([\d.]+)",
                    output.get("text", ""),
                ):
                    threads, jobs, began, ended = match.groups()
                    found.append((int(threads), int(jobs), float(began), float(ended)))
    return found


def start(store: RunStore, frame: pd.DataFrame, seed: int) -> str:
    options = SearchOptions(rollouts=3, max_depth=1, seed=seed, cv_folds=0, parallel=1)
    return create_run(frame, "y", store=store, options=options)


def test_two_runs_at_once_never_use_more_threads_than_cores(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store, budget = RunStore(tmp_path), CpuBudget(cores=2)
    alone = start(store, small_regression, seed=0)
    asyncio.run(Search(store, alone, coder=ProbeCoder(), budget=budget).run())
    assert {(t, j) for t, j, _, _ in probes(store, alone)} == {(2, 2)}  # the whole machine

    pair = [start(store, small_regression, seed=s) for s in (1, 2)]

    async def both() -> None:
        await asyncio.gather(
            *(Search(store, r, coder=ProbeCoder(), budget=budget).run() for r in pair)
        )

    asyncio.run(both())
    first, second = (probes(store, run_id) for run_id in pair)
    assert any(b1 < e2 and b2 < e1 for _, _, b1, e1 in first for _, _, b2, e2 in second)
    fits = first + second
    for threads, jobs, began, _ in fits:
        assert 1 <= jobs <= threads  # n_jobs=-1 held to the kernel's share
        at_once = sum(t for t, _, b, e in fits if b <= began < e)  # threads busy as it began
        assert at_once <= budget.cores, sorted(fits, key=lambda f: f[2])
    assert budget.runs == 0


def test_a_run_starts_no_more_kernels_than_the_machine_can_run_at_once(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    options = SearchOptions(rollouts=3, max_depth=1, parallel=4, cv_folds=0)
    run_id = create_run(small_regression, "y", store=store, options=options)
    search = Search(store, run_id, budget=CpuBudget(cores=1))
    kernels: list[int] = []
    search.listeners.append(
        lambda event: kernels.append(len(search.kernels.kernel_ids)) if search.kernels else None
    )
    record = asyncio.run(search.run())
    assert record.status == "finished" and record.simulations == 3
    assert kernels and max(kernels) == 1  # not four kernels, three of them waiting for a core


def test_kernels_on_a_gateway_are_not_held_to_this_machines_cores() -> None:
    from jupyter_server.gateway.managers import GatewayMappingKernelManager

    from sela_jupyter.engine.cpu import RemoteKernels, budget_for

    remote = budget_for(GatewayMappingKernelManager.__new__(GatewayMappingKernelManager))
    assert isinstance(remote, RemoteKernels)
    assert remote.kernels_for(8) == 8 and remote.threads() is None
    assert budget_for(None) is CpuBudget.shared()
