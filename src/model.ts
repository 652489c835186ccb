/**
 * The sidebar's state: the runs, the selected run's search tree and the
 * selected node, fed by REST (the source of truth on load and reload) and by
 * the live events of the server's event bus.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { SelaAPI } from './api';
import {
  IBest,
  INodeDetail,
  IRun,
  IRunListEntry,
  IRunSummary,
  IRunTree,
  ISelaEvent,
  ISelaModel,
  ITreeNode,
  LoadState,
  NodeStatus
} from './tokens';

const STATUS_RANK: Record<NodeStatus, number> = {
  queued: 0,
  cancelled: 0,
  running: 1,
  done: 2,
  failed: 2
};

/**
 * How far a node has come: visits first, then its own status. Events and
 * snapshots never move a node backwards on this scale.
 */
export function progress(node: ITreeNode): number {
  return node.visits * 4 + (STATUS_RANK[node.status] ?? 0);
}

/**
 * True when a node's own simulation has finished, well or not.
 */
export function isSimulated(node: ITreeNode): boolean {
  return node.status === 'done' || node.status === 'failed';
}

/**
 * One point of the score chart: a finished simulation in finishing order.
 */
export interface IScorePoint {
  /**
   * The simulated node.
   */
  node: string;
  /**
   * Its dev score; null when it failed.
   */
  score: number | null;
  /**
   * The best dev score so far, after this simulation.
   */
  best: number | null;
}

/**
 * The search tree of one run, merged from snapshots and events.
 */
export class RunTree implements IRunTree {
  constructor(
    readonly runId: string,
    direction: 'minimize' | 'maximize' = 'maximize'
  ) {
    this.direction = direction;
  }

  /**
   * Whether lower dev scores are better (error metrics).
   */
  direction: 'minimize' | 'maximize';

  /**
   * The root's id (the node without a parent).
   */
  get rootId(): string | null {
    return this._rootId;
  }

  /**
   * Bumped on every change; lets views memoize on it.
   */
  get version(): number {
    return this._version;
  }

  /**
   * Number of nodes.
   */
  get size(): number {
    return this._nodes.size;
  }

  /**
   * A node by id.
   */
  get(id: string): ITreeNode | undefined {
    return this._nodes.get(id);
  }

  /**
   * Every node, in insertion order.
   */
  nodes(): ITreeNode[] {
    return [...this._nodes.values()];
  }

  /**
   * The known children of a node, in expansion order.
   */
  children(id: string): ITreeNode[] {
    const node = this._nodes.get(id);
    if (!node) {
      return [];
    }
    const out: ITreeNode[] = [];
    for (const childId of node.children) {
      const child = this._nodes.get(childId);
      if (child) {
        out.push(child);
      }
    }
    return out;
  }

  /**
   * Replace the tree by a REST snapshot, keeping any node an event has
   * already moved further than the snapshot shows (the snapshot may have
   * been taken before that event).
   */
  loadSnapshot(nodes: ITreeNode[]): void {
    const previous = this._nodes;
    this._nodes = new Map();
    this._rootId = null;
    for (const node of nodes) {
      const seen = previous.get(node.id);
      const keep = seen && progress(seen) > progress(node);
      this._put(
        keep ? { ...node, ...seen, children: union(node, seen) } : node
      );
    }
    // Nodes an event added after the snapshot was taken.
    for (const node of previous.values()) {
      if (!this._nodes.has(node.id)) {
        this._put(node);
      }
    }
    this._linkAll();
    this._version++;
  }

  /**
   * Apply one node from an event. An event older than the last one applied
   * to that node, or one that would move it backwards, is ignored; a node
   * whose parent is not known yet is linked when the parent arrives.
   *
   * @returns Whether the tree changed.
   */
  applyNode(node: ITreeNode, time?: number): boolean {
    const seen = this._nodes.get(node.id);
    const last = this._times.get(node.id);
    if (seen) {
      if (time !== undefined && last !== undefined && time < last) {
        return false;
      }
      if (progress(node) < progress(seen)) {
        return false;
      }
    }
    if (time !== undefined) {
      this._times.set(node.id, time);
    }
    this._put(seen ? { ...node, children: union(node, seen) } : node);
    this._link(node.id);
    // Children whose events came before this node's.
    for (const orphan of this._orphans.get(node.id) ?? []) {
      this._link(orphan);
    }
    this._orphans.delete(node.id);
    this._version++;
    return true;
  }

  /**
   * The best simulated node by dev score and the run's direction.
   */
  best(): ITreeNode | null {
    let best: ITreeNode | null = null;
    for (const node of this._nodes.values()) {
      if (node.status !== 'done' || node.dev_score === null) {
        continue;
      }
      if (best === null || this.better(node.dev_score, best.dev_score!)) {
        best = node;
      }
    }
    return best;
  }

  /**
   * Ids from the root down to `id` (both included).
   */
  pathTo(id: string | null | undefined): string[] {
    const out: string[] = [];
    let current = id ? this._nodes.get(id) : undefined;
    const guard = new Set<string>();
    while (current && !guard.has(current.id)) {
      guard.add(current.id);
      out.push(current.id);
      current = current.parent ? this._nodes.get(current.parent) : undefined;
    }
    return out.reverse();
  }

  /**
   * The ids on the root-to-best path.
   */
  bestPath(): Set<string> {
    return new Set(this.pathTo(this.best()?.id));
  }

  /**
   * Whether score `a` beats score `b` in this run's direction.
   */
  better(a: number, b: number): boolean {
    return this.direction === 'minimize' ? a < b : a > b;
  }

  /**
   * Simulations finished (done or failed).
   */
  simulated(): number {
    let n = 0;
    for (const node of this._nodes.values()) {
      if (isSimulated(node)) {
        n++;
      }
    }
    return n;
  }

  /**
   * Each finished simulation's score in finishing order, with the best so far.
   */
  scoreSeries(): IScorePoint[] {
    const finished = this.nodes()
      .filter(isSimulated)
      .sort(
        (a, b) =>
          (a.timings?.finished ?? Infinity) - (b.timings?.finished ?? Infinity)
      );
    let best: number | null = null;
    return finished.map(node => {
      const score =
        node.status === 'done' && node.dev_score !== null
          ? node.dev_score
          : null;
      if (score !== null && (best === null || this.better(score, best))) {
        best = score;
      }
      return { node: node.id, score, best };
    });
  }

  /**
   * A node's score on [0, 1] among the simulated nodes (1 is the best), for
   * shading; null when it has no score.
   */
  shade(node: ITreeNode): number | null {
    if (node.status !== 'done' || node.dev_score === null) {
      return null;
    }
    if (this._rangeVersion !== this._version) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const n of this._nodes.values()) {
        if (n.status === 'done' && n.dev_score !== null) {
          lo = Math.min(lo, n.dev_score);
          hi = Math.max(hi, n.dev_score);
        }
      }
      this._range = [lo, hi];
      this._rangeVersion = this._version;
    }
    const [lo, hi] = this._range;
    if (!(hi > lo)) {
      return 1;
    }
    const t = (node.dev_score - lo) / (hi - lo);
    return this.direction === 'minimize' ? 1 - t : t;
  }

  private _put(node: ITreeNode): void {
    this._nodes.set(node.id, node);
    if (node.parent === null) {
      this._rootId = node.id;
    }
  }

  private _link(id: string): void {
    const node = this._nodes.get(id);
    if (!node || node.parent === null) {
      return;
    }
    const parent = this._nodes.get(node.parent);
    if (!parent) {
      const waiting = this._orphans.get(node.parent) ?? new Set<string>();
      this._orphans.set(node.parent, waiting.add(id));
      return;
    }
    if (!parent.children.includes(id)) {
      this._nodes.set(parent.id, {
        ...parent,
        children: [...parent.children, id]
      });
    }
  }

  private _linkAll(): void {
    for (const id of [...this._nodes.keys()]) {
      this._link(id);
    }
  }

  private _nodes = new Map<string, ITreeNode>();
  private _times = new Map<string, number>();
  private _orphans = new Map<string, Set<string>>();
  private _rootId: string | null = null;
  private _version = 0;
  private _range: [number, number] = [0, 0];
  private _rangeVersion = -1;
}

function union(a: ITreeNode, b: ITreeNode): string[] {
  const out = [...a.children];
  for (const id of b.children) {
    if (!out.includes(id)) {
      out.push(id);
    }
  }
  return out;
}

/**
 * What the model needs of the REST API (the real one by default; tests pass
 * their own).
 */
export type SelaClient = Pick<
  typeof SelaAPI,
  'listRuns' | 'getRun' | 'getNode'
>;

/**
 * The sidebar's model: runs newest first, the selected run's tree, the
 * selected node and its detail.
 */
export class SelaModel implements ISelaModel {
  constructor(options: SelaModel.IOptions = {}) {
    this._client = options.client ?? SelaAPI;
    this._refetchDelay = options.refetchDelay ?? 250;
  }

  /**
   * Emitted after every change.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /**
   * Run summaries, newest first.
   */
  get runs(): IRunListEntry[] {
    return this._runs;
  }

  /**
   * Loading state of the run list.
   */
  get runsState(): LoadState {
    return this._runsState;
  }

  /**
   * Loading state of the selected run.
   */
  get runState(): LoadState {
    return this._runState;
  }

  /**
   * The last error message, for the error state.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * The selected run's id.
   */
  get selectedRunId(): string | null {
    return this._selectedRunId;
  }

  /**
   * The selected run's summary.
   */
  get selectedRun(): IRunListEntry | null {
    return this._runs.find(r => r.id === this._selectedRunId) ?? null;
  }

  /**
   * The selected run's tree.
   */
  get tree(): RunTree | null {
    return this._tree;
  }

  /**
   * The selected node's id.
   */
  get selectedNodeId(): string | null {
    return this._selectedNodeId;
  }

  /**
   * The selected node's detail, once loaded.
   */
  get nodeDetail(): INodeDetail | null {
    return this._detail;
  }

  /**
   * Loading state of the node detail.
   */
  get nodeState(): LoadState {
    return this._nodeState;
  }

  /**
   * Fetch the run list; select the newest run when none is selected.
   */
  async refreshRuns(): Promise<void> {
    if (this._runs.length === 0) {
      this._runsState = 'loading';
      this._emit();
    }
    try {
      this._runs = sortRuns(await this._client.listRuns());
      this._runsState = 'ready';
      this._error = null;
    } catch (error) {
      this._runsState = 'error';
      this._error = messageOf(error);
      this._emit();
      return;
    }
    const selected = this._selectedRunId;
    if (!selected || !this._runs.some(r => r.id === selected)) {
      await this.selectRun(this._runs[0]?.id ?? null);
    } else {
      this._emit();
    }
  }

  /**
   * Select a run and load its tree.
   */
  async selectRun(runId: string | null): Promise<void> {
    if (runId !== this._selectedRunId) {
      this._selectedRunId = runId;
      this._tree = null;
      this._selectedNodeId = null;
      this._detail = null;
      this._nodeState = 'idle';
    }
    if (!runId) {
      this._runState = 'idle';
      this._emit();
      return;
    }
    await this.reloadRun();
  }

  /**
   * Re-fetch the selected run from REST and merge it into the tree.
   */
  async reloadRun(): Promise<void> {
    const runId = this._selectedRunId;
    if (!runId) {
      return;
    }
    if (!this._tree) {
      this._runState = 'loading';
      this._emit();
    }
    let run: IRun;
    try {
      run = await this._client.getRun(runId);
    } catch (error) {
      if (runId === this._selectedRunId) {
        this._runState = 'error';
        this._error = messageOf(error);
        this._emit();
      }
      return;
    }
    if (runId !== this._selectedRunId) {
      return; // the user moved on while this was loading
    }
    this.applyRun(run);
  }

  /**
   * Merge a full run record (from REST) into the model.
   */
  applyRun(run: IRun): void {
    const { tree, ...summary } = run;
    this._upsertRun(summary);
    if (run.id !== this._selectedRunId) {
      return;
    }
    if (!this._tree) {
      this._tree = new RunTree(run.id, run.task?.direction ?? 'maximize');
    }
    if (run.task?.direction) {
      this._tree.direction = run.task.direction;
    }
    this._tree.loadSnapshot(tree?.nodes ?? []);
    this._runState = 'ready';
    this._emit();
  }

  /**
   * Apply one event of the SELA schema. Node events update the tree at once;
   * run events update the run list; after a simulation or a run ends, the
   * run is re-fetched shortly (backpropagated visits are only in REST).
   */
  handleEvent(event: ISelaEvent): void {
    const known = this._runs.some(r => r.id === event.run_id);
    if (event.run) {
      this._upsertRun({ ...event.run, id: event.run_id });
    } else if (!known) {
      this._scheduleRunsRefresh();
    }
    if (event.type === 'simulation_finished' && event.best !== undefined) {
      this._patchRun(event.run_id, {
        best: event.best as IBest | null,
        simulations: (this._find(event.run_id)?.simulations ?? 0) + 1
      });
    }
    if (event.run_id === this._selectedRunId && this._tree && event.node) {
      this._tree.applyNode(event.node, event.time);
      if (event.node.id === this._selectedNodeId) {
        this._scheduleDetailRefresh();
      }
    }
    if (
      event.run_id === this._selectedRunId &&
      (event.type === 'simulation_finished' ||
        event.type === 'run_finished' ||
        event.type === 'run_started' ||
        !this._tree)
    ) {
      this._scheduleRunRefetch();
    }
    if (!this._selectedRunId && event.type === 'run_started') {
      void this.selectRun(event.run_id);
    }
    this._emit();
  }

  /**
   * Select a node and load its detail.
   */
  async selectNode(nodeId: string | null): Promise<void> {
    this._selectedNodeId = nodeId;
    this._detail = null;
    this._nodeState = nodeId ? 'loading' : 'idle';
    this._emit();
    if (nodeId) {
      await this._loadDetail();
    }
  }

  /**
   * Apply a node a REST call returned (steering), then re-fetch the run.
   */
  async applyNodeUpdate(runId: string, node: ITreeNode): Promise<void> {
    if (runId === this._selectedRunId && this._tree) {
      this._tree.applyNode(node);
      this._emit();
    }
    await this.reloadRun();
  }

  /**
   * Forget a deleted run.
   */
  removeRun(runId: string): void {
    this._runs = this._runs.filter(r => r.id !== runId);
    if (this._selectedRunId === runId) {
      void this.selectRun(this._runs[0]?.id ?? null);
    }
    this._emit();
  }

  /**
   * Stop timers.
   */
  dispose(): void {
    for (const timer of this._timers.values()) {
      clearTimeout(timer);
    }
    this._timers.clear();
    Signal.clearData(this);
  }

  private async _loadDetail(): Promise<void> {
    const runId = this._selectedRunId;
    const nodeId = this._selectedNodeId;
    if (!runId || !nodeId) {
      return;
    }
    try {
      const detail = await this._client.getNode(runId, nodeId);
      if (nodeId === this._selectedNodeId && runId === this._selectedRunId) {
        this._detail = detail;
        this._nodeState = 'ready';
      }
    } catch (error) {
      if (nodeId === this._selectedNodeId) {
        this._nodeState = 'error';
        this._error = messageOf(error);
      }
    }
    this._emit();
  }

  private _find(runId: string): IRunListEntry | undefined {
    return this._runs.find(r => r.id === runId);
  }

  private _upsertRun(summary: IRunListEntry): void {
    const index = this._runs.findIndex(r => r.id === summary.id);
    if (index < 0) {
      this._runs = sortRuns([summary, ...this._runs]);
    } else {
      const runs = [...this._runs];
      runs[index] = { ...runs[index], ...summary };
      this._runs = runs;
    }
    if (this._runsState !== 'ready') {
      this._runsState = 'ready';
    }
  }

  private _patchRun(runId: string, patch: Partial<IRunListEntry>): void {
    const index = this._runs.findIndex(r => r.id === runId);
    if (index >= 0) {
      const runs = [...this._runs];
      runs[index] = { ...runs[index], ...patch };
      this._runs = runs;
    }
  }

  private _schedule(key: string, fn: () => void): void {
    if (this._timers.has(key)) {
      return;
    }
    this._timers.set(
      key,
      setTimeout(() => {
        this._timers.delete(key);
        fn();
      }, this._refetchDelay)
    );
  }

  private _scheduleRunRefetch(): void {
    this._schedule('run', () => void this.reloadRun());
  }

  private _scheduleRunsRefresh(): void {
    this._schedule('runs', () => void this.refreshRuns());
  }

  private _scheduleDetailRefresh(): void {
    this._schedule('detail', () => void this._loadDetail());
  }

  private _emit(): void {
    this._changed.emit();
  }

  private _client: SelaClient;
  private _refetchDelay: number;
  private _changed = new Signal<this, void>(this);
  private _runs: IRunListEntry[] = [];
  private _runsState: LoadState = 'idle';
  private _runState: LoadState = 'idle';
  private _nodeState: LoadState = 'idle';
  private _error: string | null = null;
  private _selectedRunId: string | null = null;
  private _selectedNodeId: string | null = null;
  private _tree: RunTree | null = null;
  private _detail: INodeDetail | null = null;
  private _timers = new Map<string, ReturnType<typeof setTimeout>>();
}

/**
 * The model's namespace.
 */
export namespace SelaModel {
  /**
   * Options of the model.
   */
  export interface IOptions {
    /**
     * The REST client; the real API by default.
     */
    client?: SelaClient;
    /**
     * Milliseconds to wait before re-fetching a run after an event.
     */
    refetchDelay?: number;
  }
}

/**
 * Runs newest first (by creation time, then id, which starts with the date).
 */
export function sortRuns<T extends IRunSummary>(runs: T[]): T[] {
  return [...runs].sort(
    (a, b) => (b.created ?? 0) - (a.created ?? 0) || (b.id < a.id ? -1 : 1)
  );
}

/**
 * A user-facing message for any error.
 */
export function messageOf(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
