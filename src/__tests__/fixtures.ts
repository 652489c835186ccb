/**
 * Whole records, as the server sends them, for the tests to start from.
 */
import { IBest, IFinal, IRunSummary, ITokenUsage, ITreeNode } from '../tokens';

/**
 * A tree node: the root when `parent` is null, else an `eda` node.
 */
export function treeNode(
  id: string,
  parent: string | null,
  patch: Partial<ITreeNode> = {}
): ITreeNode {
  return {
    id,
    parent,
    depth: parent === null ? 0 : 1,
    stage: parent === null ? 'root' : 'eda',
    insight: null,
    children: [],
    visits: 0,
    value: 0,
    status: 'queued',
    dev_score: null,
    test_score: null,
    error: null,
    timings: {},
    expanded: false,
    pruned: false,
    pinned: false,
    exhausted: false,
    ...patch
  };
}

/**
 * LLM token usage; all zero (an offline run) unless patched.
 */
export function tokenUsage(patch: Partial<ITokenUsage> = {}): ITokenUsage {
  return { prompt: 0, completion: 0, cost: 0, calls: 0, ...patch };
}

/**
 * A run's best node.
 */
export function best(node: string, devScore: number | null): IBest {
  return { node, dev_score: devScore, test_score: null };
}

/**
 * A final candidate of one node, chosen on dev.
 */
export function final(patch: Partial<IFinal> = {}): IFinal {
  const members = patch.members ?? [{ node: 'n1', weight: 1 }];
  return {
    kind: 'node',
    members,
    dev_score: 1,
    test_score: null,
    chosen_on: 'dev',
    cv_score: null,
    threshold: null,
    best_single: { node: members[0].node, dev_score: 1 },
    ...patch
  };
}

/**
 * A regression run's summary, searching on this server.
 */
export function runSummary(
  id: string,
  patch: Partial<IRunSummary> = {}
): IRunSummary {
  return {
    id,
    name: '',
    created: 1,
    status: 'running',
    source: 'python',
    description: '',
    options: {
      rollouts: 4,
      time_budget: null,
      parallel: 1,
      seed: 0,
      max_depth: 5,
      cell_timeout: 120,
      simulation_timeout: 300,
      insights: 'builtin',
      reuse_state: true,
      reuse_fits: true,
      cv_folds: 3,
      cv_top: 8,
      llm: '',
      llm_base_url: '',
      llm_key_env: 'OPENAI_API_KEY',
      llm_timeout: 120,
      llm_retries: 3,
      token_budget: null,
      fallback: ''
    },
    task: {
      target: 'price',
      task_type: 'regression',
      metric: 'rmse',
      seed: 0,
      positive_label: null,
      classes: [],
      score_scale: 1,
      direction: 'minimize'
    },
    simulations: 0,
    best: null,
    timings: { elapsed: 0 },
    tokens: tokenUsage(),
    warnings: [],
    error: null,
    active: true,
    ...patch
  };
}
