import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';

import type { components } from './schema';

/**
 * Shared types of the sela-jupyter frontend.
 *
 * The shapes of the server's JSON are generated from its schema
 * (`sela_jupyter/server/openapi.yaml`, which takes the shapes events share
 * from `events/run.yaml`) into `schema.ts` by `jlpm generate:types`; a test
 * fails when `schema.ts` is older than the YAML. Their fields are documented
 * there. This module names them and declares the sidebar's model and token.
 */

/**
 * The schemas of the REST API and the events, by name.
 */
type Schemas = components['schemas'];

/**
 * The pipeline stages, in the order they appear as levels of the search tree.
 */
export const STAGES = [
  'eda',
  'preprocess',
  'features',
  'model',
  'ensemble'
] as const satisfies readonly Schemas['Stage'][];

/**
 * One pipeline stage: a level of the search tree.
 */
export type Stage = Schemas['Stage'];

/**
 * The JSON body of an error reply from a jupyter_server `APIHandler`.
 */
export type IErrorReply = Schemas['Error'];

/**
 * The id of the run and node event schema on jupyter_server's event bus.
 */
export const EVENT_SCHEMA_ID =
  'https://events.sela-jupyter.org/sela_jupyter/run/v1';

/**
 * A node's status, in the order a node goes through them.
 */
export type NodeStatus = Schemas['NodeStatus'];

/**
 * A run's status as stored in `run.json`.
 */
export type RunStatus = Schemas['RunStatus'];

/**
 * One idea for one pipeline stage.
 */
export type IInsight = Schemas['Insight'];

/**
 * One node of the search tree, as in `tree.json` and in node events.
 */
export type ITreeNode = Schemas['Node'];

/**
 * LLM tokens used and their estimated cost.
 */
export type ITokenUsage = Schemas['TokenUsage'];

/**
 * The best node of a run so far.
 */
export type IBest = Schemas['Best'];

/**
 * A run's final candidate: a weighted blend of the best nodes' pipelines, or
 * one node on its own.
 */
export type IFinal = Schemas['Final'];

/**
 * A run's summary, as listed by `GET sela/api/runs` and carried by run events.
 */
export type IRunSummary = Schemas['RunSummary'];

/**
 * The search tree of a run, as in `tree.json`.
 */
export type ITree = Schemas['Tree'];

/**
 * A run's whole record with its tree, as `GET sela/api/runs/{id}` returns it.
 */
export type IRun = Schemas['Run'];

/**
 * A run of the sidebar's list: its summary, and the rest of its record once
 * the run was loaded in full.
 */
export type IRunListEntry = IRunSummary &
  Partial<Omit<IRun, keyof IRunSummary | 'tree'>>;

/**
 * A node with its detail, as `GET sela/api/runs/{id}/nodes/{node}` returns it.
 */
export type INodeDetail = Schemas['NodeDetail'];

/**
 * One exported cell of a node's pipeline.
 */
export type IExportCell = Schemas['ExportCell'];

/**
 * A pipeline as cells (`GET .../export?format=cells`).
 */
export type IExportedCells = Schemas['ExportedCells'];

/**
 * An event of the SELA schema on the event bus.
 */
export type ISelaEvent = Schemas['RunEvent'];

/**
 * Where a part of the sidebar stands.
 */
export type LoadState = 'idle' | 'loading' | 'ready' | 'error';

/**
 * The search tree of one run as the sidebar knows it, merged from snapshots
 * and events.
 */
export interface IRunTree {
  /**
   * The run's id.
   */
  readonly runId: string;
  /**
   * Whether lower dev scores are better (error metrics).
   */
  readonly direction: 'minimize' | 'maximize';
  /**
   * The root's id (the node without a parent).
   */
  readonly rootId: string | null;
  /**
   * Bumped on every change; lets views memoize on it.
   */
  readonly version: number;
  /**
   * Number of nodes.
   */
  readonly size: number;
  /**
   * A node by id.
   */
  get(id: string): ITreeNode | undefined;
  /**
   * Every node, in insertion order.
   */
  nodes(): ITreeNode[];
  /**
   * The known children of a node, in expansion order.
   */
  children(id: string): ITreeNode[];
  /**
   * The best simulated node by dev score and the run's direction.
   */
  best(): ITreeNode | null;
  /**
   * Ids from the root down to `id` (both included).
   */
  pathTo(id: string | null | undefined): string[];
}

/**
 * The sidebar's model: runs newest first, the selected run's tree, the
 * selected node and its detail, fed by REST and the event bus.
 */
export interface ISelaModel {
  /**
   * Emitted after every change.
   */
  readonly changed: ISignal<ISelaModel, void>;
  /**
   * Runs, newest first.
   */
  readonly runs: IRunListEntry[];
  /**
   * Loading state of the run list.
   */
  readonly runsState: LoadState;
  /**
   * Loading state of the selected run.
   */
  readonly runState: LoadState;
  /**
   * The last error message, for the error state.
   */
  readonly error: string | null;
  /**
   * The selected run's id.
   */
  readonly selectedRunId: string | null;
  /**
   * The selected run's list entry.
   */
  readonly selectedRun: IRunListEntry | null;
  /**
   * The selected run's tree.
   */
  readonly tree: IRunTree | null;
  /**
   * The selected node's id.
   */
  readonly selectedNodeId: string | null;
  /**
   * The selected node's detail, once loaded.
   */
  readonly nodeDetail: INodeDetail | null;
  /**
   * Loading state of the node detail.
   */
  readonly nodeState: LoadState;
  /**
   * Fetch the run list; select the newest run when none is selected.
   */
  refreshRuns(): Promise<void>;
  /**
   * Select a run and load its tree.
   */
  selectRun(runId: string | null): Promise<void>;
  /**
   * Re-fetch the selected run from REST and merge it into the tree.
   */
  reloadRun(): Promise<void>;
  /**
   * Merge a full run record (from REST) into the model.
   */
  applyRun(run: IRun): void;
  /**
   * Apply one event of the SELA schema.
   */
  handleEvent(event: ISelaEvent): void;
  /**
   * Select a node and load its detail.
   */
  selectNode(nodeId: string | null): Promise<void>;
  /**
   * Apply a node a REST call returned (steering), then re-fetch the run.
   */
  applyNodeUpdate(runId: string, node: ITreeNode): Promise<void>;
  /**
   * Forget a deleted run.
   */
  removeRun(runId: string): void;
}

/**
 * The SELA sidebar: its model and widget id, shared by the plugins.
 */
export interface ISelaSidebar {
  /**
   * The sidebar's model (runs, tree, selection).
   */
  readonly model: ISelaModel;
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
