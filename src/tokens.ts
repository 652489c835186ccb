import { Token } from '@lumino/coreutils';

/**
 * Shared types of the sela-jupyter frontend.
 *
 * They mirror the JSON the `sela_jupyter` server extension sends, so the
 * sidebar, the REST client and the commands agree on one shape.
 */

/**
 * The pipeline stages, in the order they appear as levels of the search tree.
 */
export const STAGES = [
  'eda',
  'preprocess',
  'features',
  'model',
  'ensemble'
] as const;

/**
 * One pipeline stage: a level of the search tree.
 */
export type Stage = (typeof STAGES)[number];

/**
 * The JSON body of an error reply from a jupyter_server `APIHandler`.
 */
export interface IErrorReply {
  /**
   * What went wrong and what to do about it, written for the user.
   */
  message: string;

  /**
   * The short HTTP reason, when the handler gave one.
   */
  reason?: string | null;

  /**
   * The server-side traceback, present only when the server runs in debug mode.
   */
  traceback?: string;
}

/**
 * The id of the run and node event schema on jupyter_server's event bus.
 */
export const EVENT_SCHEMA_ID =
  'https://events.sela-jupyter.org/sela_jupyter/run/v1';

/**
 * A node's status, in the order a node goes through them.
 */
export type NodeStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/**
 * A run's status as stored in `run.json`.
 */
export type RunStatus =
  | 'created'
  | 'queued'
  | 'running'
  | 'finished'
  | 'stopped'
  | 'failed'
  | 'interrupted'
  | string;

/**
 * One idea for one pipeline stage.
 */
export interface IInsight {
  /**
   * Stable id, e.g. `preprocess.power_target` or `user.<n>`.
   */
  id: string;
  /**
   * The stage the insight decides.
   */
  stage: Stage;
  /**
   * The insight in plain words.
   */
  text: string;
  /**
   * Who proposed it: `builtin`, `llm` or `user`.
   */
  source: string;
}

/**
 * One node of the search tree, as in `tree.json` and in node events.
 */
export interface ITreeNode {
  /**
   * Node id, unique in its run (`n0` is the root).
   */
  id: string;
  /**
   * The parent's id; null for the root.
   */
  parent: string | null;
  /**
   * Depth in the tree: 0 for the root, 1 for `eda`, ...
   */
  depth: number;
  /**
   * The stage the node decides (`root` for the root).
   */
  stage: Stage | 'root';
  /**
   * The node's own insight; null for the root.
   */
  insight: IInsight | null;
  /**
   * Ids of the children, in expansion order.
   */
  children: string[];
  /**
   * Simulations that went through this node.
   */
  visits: number;
  /**
   * Sum of the rewards backpropagated through this node.
   */
  value: number;
  /**
   * Where the node's own simulation stands.
   */
  status: NodeStatus;
  /**
   * The dev-set score of the node's simulation (in the metric's units).
   */
  dev_score: number | null;
  /**
   * The test-set score, reported only, never used to choose.
   */
  test_score?: number | null;
  /**
   * Why the simulation failed.
   */
  error?: string | null;
  /**
   * Seconds per phase and `started` / `finished` Unix times.
   */
  timings: Record<string, number>;
  /**
   * True once the node has children.
   */
  expanded?: boolean;
  /**
   * True when the user excluded the node's subtree from the search.
   */
  pruned?: boolean;
  /**
   * True when the user asked to simulate or expand this node next.
   */
  pinned?: boolean;
  /**
   * True when no insight is left to expand the node with.
   */
  exhausted?: boolean;
}

/**
 * LLM tokens used and their estimated cost, as in `run.json` `"tokens"` (the
 * whole run) and a node's `result.json` (that node's LLM-written cells).
 */
export interface ITokenUsage {
  /**
   * Prompt tokens sent.
   */
  prompt?: number;
  /**
   * Completion tokens received.
   */
  completion?: number;
  /**
   * Estimated cost in US dollars (0 for a model without a known price).
   */
  cost?: number;
  /**
   * Chat completions made.
   */
  calls?: number;
}

/**
 * The best node of a run so far.
 */
export interface IBest {
  /**
   * The node id.
   */
  node: string;
  /**
   * Its dev score.
   */
  dev_score: number | null;
  /**
   * Its test score, when the run has test labels.
   */
  test_score?: number | null;
}

/**
 * A run's final candidate, chosen when the run ends: a weighted blend of the
 * best nodes' pipelines, or one node on its own. It is chosen on out-of-fold
 * outputs over train + dev where the best nodes have them, else on dev.
 */
export interface IFinal {
  /**
   * `ensemble` for a blend of several nodes, `node` for one node.
   */
  kind: 'ensemble' | 'node';
  /**
   * The nodes and their weights (rounds of greedy selection), best first.
   */
  members: { node: string; weight: number }[];
  /**
   * The blend's dev score.
   */
  dev_score: number;
  /**
   * Its test score, when the run has test labels.
   */
  test_score?: number | null;
  /**
   * What it was chosen on: `cv` (out-of-fold outputs over train + dev) or `dev`.
   */
  chosen_on?: 'cv' | 'dev';
  /**
   * Its out-of-fold score over train + dev, when chosen on those.
   */
  cv_score?: number | null;
  /**
   * Binary F1 only: it predicts the positive class when that class's blended
   * probability is at least this (chosen out of fold); absent or `null` when it
   * predicts the most probable class.
   */
  threshold?: number | null;
}

/**
 * A run's summary, as listed by `GET sela/api/runs` and carried by run events.
 */
export interface IRunSummary {
  /**
   * Run id (`<date>-<time>-<name>-<hex>`).
   */
  id: string;
  /**
   * The user's name for the run; may be empty.
   */
  name?: string;
  /**
   * Unix time the run was created.
   */
  created?: number;
  /**
   * Run status.
   */
  status: RunStatus;
  /**
   * Where the run was started: `python`, `cli`, `server`, `magic`.
   */
  source?: string;
  /**
   * Simulations finished.
   */
  simulations?: number;
  /**
   * Simulations in flight.
   */
  running?: number;
  /**
   * The best node so far.
   */
  best?: IBest | null;
  /**
   * The final candidate, once the run has ended.
   */
  final?: IFinal | null;
  /**
   * The run's options (`rollouts`, `max_depth`, `parallel`, ...).
   */
  options?: Record<string, unknown>;
  /**
   * Target, task type, metric and its direction.
   */
  task?: {
    target?: string;
    task_type?: string;
    metric?: string;
    direction?: 'minimize' | 'maximize';
  };
  /**
   * `elapsed` seconds and `finished` Unix time.
   */
  timings?: Record<string, number>;
  /**
   * LLM tokens used by the run; all zero (or absent) for an offline run.
   */
  tokens?: ITokenUsage | null;
  /**
   * What the data profile asks a person to look at, one line per column
   * (e.g. a column that predicts the target almost alone: a suspected leak).
   */
  warnings?: string[];
  /**
   * Why the run failed.
   */
  error?: string | null;
  /**
   * True while this server searches the run.
   */
  active?: boolean;
  /**
   * The data the run was given (file name and row counts).
   */
  data?: { frame?: string; rows?: Record<string, number> };
  /**
   * A description of the data set, when the run was given one.
   */
  description?: string;
}

/**
 * The search tree of a run, as in `tree.json`.
 */
export interface ITree {
  /**
   * Stages searched.
   */
  max_depth: number;
  /**
   * The root's id.
   */
  root: string;
  /**
   * Every node.
   */
  nodes: ITreeNode[];
}

/**
 * A run with its tree, as `GET sela/api/runs/{id}` returns it.
 */
export interface IRun extends IRunSummary {
  /**
   * The search tree.
   */
  tree: ITree;
}

/**
 * A node with its detail, as `GET sela/api/runs/{id}/nodes/{node}` returns it.
 */
export interface INodeDetail {
  /**
   * The node itself.
   */
  node: ITreeNode;
  /**
   * The nodes from the first stage down to this one, each with its insight.
   */
  path: { id: string; stage: Stage; insight: IInsight | null }[];
  /**
   * Stage code by stage, as run by the simulation.
   */
  code?: Record<string, string>;
  /**
   * The last lines the simulation printed.
   */
  output_tail?: string;
  /**
   * Why the simulation failed.
   */
  error?: string | null;
  /**
   * The failing cell's traceback.
   */
  traceback?: string;
  /**
   * Seconds per phase.
   */
  timings?: Record<string, number>;
  /**
   * LLM tokens this node used; all zero (or absent) when no LLM wrote its code.
   */
  tokens?: ITokenUsage | null;
  /**
   * The notebook path on the server's disk.
   */
  notebook?: string;
  /**
   * The notebook path relative to the server root; null when outside it.
   */
  notebook_path?: string | null;
}

/**
 * One exported cell of a node's pipeline.
 */
export interface IExportCell {
  /**
   * `title`, `setup`, a stage name, `evaluation`, `test` or `predict`.
   */
  role: string;
  /**
   * `code` or `markdown`.
   */
  kind: 'code' | 'markdown';
  /**
   * The cell's source.
   */
  source: string;
}

/**
 * A node's pipeline as cells (`GET .../export?format=cells`).
 */
export interface IExportedCells {
  /**
   * The run id.
   */
  run: string;
  /**
   * The exported node's id, or `final` for a blend of nodes.
   */
  node: string;
  /**
   * The pipeline's dev score.
   */
  dev_score?: number | null;
  /**
   * A blend's nodes and weights.
   */
  members?: { node: string; weight: number }[];
  /**
   * The cells, in notebook order.
   */
  cells: IExportCell[];
}

/**
 * An event of the SELA schema on the event bus.
 */
export interface ISelaEvent {
  /**
   * What happened.
   */
  type:
    | 'run_started'
    | 'run_queued'
    | 'run_finished'
    | 'node_added'
    | 'node_updated'
    | 'simulation_started'
    | 'simulation_finished'
    | string;
  /**
   * The run the event belongs to.
   */
  run_id: string;
  /**
   * Unix time the engine emitted it.
   */
  time?: number;
  /**
   * The node that changed.
   */
  node?: ITreeNode;
  /**
   * The run's summary, on run events.
   */
  run?: IRunSummary;
  /**
   * The best node so far, on simulation_finished.
   */
  best?: IBest | null;
}

/**
 * The SELA sidebar: its model and widget id, shared by the plugins.
 */
export interface ISelaSidebar {
  /**
   * The sidebar's model (runs, tree, selection).
   */
  readonly model: import('./model').SelaModel;
  /**
   * The sidebar panel's widget id, for `app.shell.activateById`.
   */
  readonly id: string;
}

/**
 * The token of the SELA sidebar.
 */
export const ISelaSidebar = new Token<ISelaSidebar>(
  'sela-jupyter:ISelaSidebar',
  'The SELA sidebar: the model of runs and trees, and the panel id.'
);
