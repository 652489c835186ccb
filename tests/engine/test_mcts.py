"""The tree search: UCT-DP, expansion, virtual loss, steering and JSON round-trips."""

from __future__ import annotations

import json
import math

import pytest

from sela_jupyter.engine.insights import STAGES, Insight, InsightPool
from sela_jupyter.engine.mcts import UNVISITED_COUNT, WIDTH, Tree, uct_dp_score
from sela_jupyter.engine.statuses import NodeStatus


def make_pool(per_stage: int = 7) -> InsightPool:
    return InsightPool(
        [Insight(f"{s}.{i}", s, f"{s} idea {i}") for s in STAGES for i in range(per_stage)]
    )


def simulate(tree: Tree, node, reward: float) -> None:
    tree.begin(node)
    tree.finish(node, reward=reward, dev_score=reward)


def test_unvisited_node_counts_as_point_eight_visits() -> None:
    tree = Tree()
    node = tree.add_child(tree.root, Insight("eda.0", "eda", "look"))
    expected = 1.4 * math.sqrt(math.log(10) / UNVISITED_COUNT)
    assert uct_dp_score(node, parent_visits=10) == pytest.approx(expected)


def test_visited_node_score_is_mean_value_plus_exploration() -> None:
    tree = Tree()
    node = tree.add_child(tree.root, Insight("eda.0", "eda", "look"))
    node.visits, node.value = 4, 2.0
    assert uct_dp_score(node, 16) == pytest.approx(0.5 + 1.4 * math.sqrt(math.log(16) / 4))


def test_first_selection_is_the_root_baseline() -> None:
    tree = Tree()
    assert tree.select(make_pool()) is tree.root


def test_expansion_draws_width_children_of_the_next_stage_without_replacement() -> None:
    tree = Tree()
    simulate(tree, tree.root, 0.5)
    node = tree.select(make_pool())
    children = [tree[c] for c in tree.root.children]
    assert len(children) == WIDTH
    assert {c.stage for c in children} == {"eda"}
    assert len({c.insight.id for c in children}) == WIDTH
    assert node in children


def test_search_goes_deep_early_with_good_rewards() -> None:
    tree, pool = Tree(), make_pool()
    depths = []
    for _ in range(4):
        node = tree.select(pool)
        depths.append(node.depth)
        simulate(tree, node, 0.8)
    # plain UCT (unvisited = infinity) would try every eda sibling first: [0, 1, 1, 1]
    assert depths == [0, 1, 2, 3]


def test_max_depth_is_honoured() -> None:
    tree, pool = Tree(max_depth=2), make_pool(2)
    for _ in range(20):
        node = tree.select(pool)
        if node is None:
            break
        simulate(tree, node, 0.5)
    assert max(n.depth for n in tree) == 2
    # root + 2 eda + 2*2 preprocess = 7 nodes, every one simulated once, then nothing is left
    assert tree.simulations == 7
    assert tree.select(pool) is None


def test_parallel_selections_differ_while_running() -> None:
    tree, pool = Tree(), make_pool()
    simulate(tree, tree.root, 0.5)
    picked = []
    for _ in range(4):
        node = tree.select(pool)
        tree.begin(node)
        picked.append(node.id)
    assert len(set(picked)) == 4
    assert all(tree[i].status == NodeStatus.RUNNING for i in picked)


def test_a_cancelled_node_drops_its_virtual_loss_and_is_simulated_again_next() -> None:
    tree, pool = Tree(), make_pool()
    simulate(tree, tree.root, 0.5)
    node = tree.select(pool)
    tree.begin(node)
    tree.cancel(node)
    assert node.status == NodeStatus.CANCELLED
    assert all(n.in_flight == 0 for n in tree)
    assert tree.select(pool) is node


def test_backprop_adds_reward_to_every_ancestor() -> None:
    tree, pool = Tree(), make_pool()
    for reward in (0.2, 0.4, 0.6):
        simulate(tree, tree.select(pool), reward)
    assert tree.root.visits == 3
    assert tree.root.value == pytest.approx(1.2)
    deepest = max(tree, key=lambda n: n.depth)
    assert deepest.visits == 1


def test_failed_nodes_are_not_expanded() -> None:
    tree, pool = Tree(), make_pool(1)
    simulate(tree, tree.root, 0.5)
    node = tree.select(pool)
    tree.begin(node)
    tree.finish(node, reward=0.0, dev_score=None, error="boom")
    assert tree.select(pool) is None  # the only eda child failed: nothing below it to try
    assert node.children == []


def test_same_seed_same_tree() -> None:
    def grow(seed: int) -> list[str]:
        tree, pool = Tree(seed=seed), make_pool()
        for i in range(12):
            simulate(tree, tree.select(pool), 0.3 + (i % 3) / 10)
        return [n.insight.id if n.insight else "root" for n in tree]

    assert grow(1) == grow(1)
    assert grow(1) != grow(2)


def test_tree_round_trips_through_json() -> None:
    tree, pool = Tree(seed=3), make_pool()
    for _ in range(5):
        simulate(tree, tree.select(pool), 0.5)
    tree.begin(tree.select(pool))
    data = json.loads(json.dumps(tree.to_dict()))
    again = Tree.from_dict(data)
    assert [n.id for n in again] == [n.id for n in tree]
    assert again.root.visits == tree.root.visits
    assert (
        sum(n.status == NodeStatus.RUNNING for n in again) == 0
    )  # running nodes come back cancelled
    assert again.select(pool) is not None


def test_pin_makes_a_node_next() -> None:
    tree, pool = Tree(), make_pool()
    simulate(tree, tree.root, 0.5)
    tree.expand(tree.root, pool)
    last = tree[tree.root.children[-1]]
    tree.pin(last.id)
    assert tree.select(pool) is last


def test_prune_excludes_subtree() -> None:
    tree, pool = Tree(), make_pool()
    simulate(tree, tree.root, 0.5)
    tree.expand(tree.root, pool)
    for child_id in tree.root.children[:-1]:
        tree.prune(child_id)
    assert tree.select(pool).id == tree.root.children[-1]


def test_user_insight_must_match_child_stage() -> None:
    tree = Tree()
    with pytest.raises(ValueError, match="stage 'eda'"):
        tree.add_child(tree.root, Insight("model.x", "model", "xgb"))


def test_best_respects_metric_direction() -> None:
    tree, pool = Tree(), make_pool()
    scores = [5.0, 3.0, 4.0]
    for s in scores:
        node = tree.select(pool)
        tree.begin(node)
        tree.finish(node, reward=1 / (1 + s), dev_score=s)
    assert tree.best(lambda a, b: a < b).dev_score == 3.0
    assert tree.best(lambda a, b: a > b).dev_score == 5.0
    assert all(n.status in (NodeStatus.DONE, NodeStatus.QUEUED) for n in tree)


def test_best_breaks_ties_towards_the_shallower_node() -> None:
    tree, pool = Tree(), make_pool()
    for _ in range(4):  # root, then one node per stage down to depth 3
        node = tree.select(pool)
        tree.begin(node)
        tree.finish(node, reward=1.0, dev_score=1.0 if node.depth == 3 else 0.9)
    late = tree.add_child(tree.root, Insight("eda.late", "eda", "added after the deep nodes"))
    tree.begin(late)
    tree.finish(late, reward=1.0, dev_score=1.0)
    best = tree.best(lambda a, b: a > b)
    assert best is late  # same dev score as the depth-3 node, created later, but shallower


def test_expansions_try_every_insight_of_a_stage_before_any_twice() -> None:
    tree, pool = Tree(seed=4), make_pool(per_stage=12)
    simulate(tree, tree.root, 0.5)
    tree.expand(tree.root, pool)
    eda = [tree[c] for c in tree.root.children]
    for node in eda[:3]:  # three expansions of five: 15 preprocess children of 12 insights
        simulate(tree, node, 0.5)
        tree.expand(node, pool)
    level = [n.insight.id for n in tree if n.depth == 2]
    assert len(level) == 15
    assert set(level) == {f"preprocess.{i}" for i in range(12)}
    # The first unvisited child is simulated first: it is always a stage insight not yet tried.
    first = [tree[node.children[0]].insight.id for node in eda[:3]]
    assert len(set(first)) == 3
