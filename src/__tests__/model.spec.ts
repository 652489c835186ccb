import { RunTree, SelaModel, SelaClient, sortRuns } from '../model';
import { IRun, IRunSummary, ISelaEvent, ITreeNode } from '../tokens';
import { best, runSummary, tokenUsage, treeNode } from './fixtures';

/** A tree node with defaults; an `eda` node carries an insight. */
function node(
  id: string,
  parent: string | null,
  patch: Partial<ITreeNode> = {}
): ITreeNode {
  return treeNode(id, parent, {
    insight:
      parent === null
        ? null
        : {
            id: `i.${id}`,
            stage: 'eda',
            text: `idea ${id}`,
            source: 'builtin'
          },
    ...patch
  });
}

function done(
  id: string,
  parent: string | null,
  score: number,
  finished: number,
  patch: Partial<ITreeNode> = {}
): ITreeNode {
  return node(id, parent, {
    status: 'done',
    visits: 1,
    dev_score: score,
    timings: { finished },
    ...patch
  });
}

describe('RunTree', () => {
  it('links a node added by an event under its parent', () => {
    const tree = new RunTree('r');
    tree.loadSnapshot([node('n0', null)]);

    tree.applyNode(node('n1', 'n0'), 1);

    expect(tree.get('n0')!.children).toEqual(['n1']);
    expect(tree.children('n0').map(n => n.id)).toEqual(['n1']);
  });

  it('applies events in order: queued, running, done', () => {
    const tree = new RunTree('r');
    tree.loadSnapshot([
      node('n0', null, { children: ['n1'] }),
      node('n1', 'n0')
    ]);

    tree.applyNode(node('n1', 'n0', { status: 'running' }), 1);
    tree.applyNode(done('n1', 'n0', 0.7, 2), 2);

    expect(tree.get('n1')).toMatchObject({ status: 'done', dev_score: 0.7 });
    expect(tree.simulated()).toBe(1);
  });

  it('ignores an older event that arrives after a newer one', () => {
    const tree = new RunTree('r');
    tree.loadSnapshot([
      node('n0', null, { children: ['n1'] }),
      node('n1', 'n0')
    ]);

    tree.applyNode(done('n1', 'n0', 0.7, 2), 2);
    const changed = tree.applyNode(node('n1', 'n0', { status: 'running' }), 1);

    expect(changed).toBe(false);
    expect(tree.get('n1')!.status).toBe('done');
  });

  it('never moves a node backwards, even without event times', () => {
    const tree = new RunTree('r');
    tree.loadSnapshot([node('n0', null), done('n1', 'n0', 0.5, 1)]);

    tree.applyNode(node('n1', 'n0', { status: 'running' }));

    expect(tree.get('n1')!.status).toBe('done');
  });

  it('keeps a child whose event came before its parent and links it later', () => {
    const tree = new RunTree('r');
    tree.loadSnapshot([node('n0', null)]);

    tree.applyNode(node('n2', 'n1', { depth: 2 }), 2);
    expect(tree.get('n2')).toBeDefined();
    tree.applyNode(node('n1', 'n0'), 3);

    expect(tree.pathTo('n2')).toEqual(['n0', 'n1', 'n2']);
    expect(tree.get('n1')!.children).toEqual(['n2']);
  });

  it('takes a reloaded snapshot but keeps nodes an event moved further', () => {
    const tree = new RunTree('r');
    tree.loadSnapshot([
      node('n0', null, { children: ['n1'] }),
      node('n1', 'n0')
    ]);
    tree.applyNode(done('n1', 'n0', 0.8, 5), 5);
    tree.applyNode(node('n3', 'n0'), 6);

    // A snapshot taken before those events, but with new backprop on n0.
    tree.loadSnapshot([
      node('n0', null, { children: ['n1', 'n2'], visits: 3, status: 'done' }),
      node('n1', 'n0', { status: 'running' }),
      node('n2', 'n0')
    ]);

    expect(tree.get('n1')!.status).toBe('done');
    expect(tree.get('n0')!.visits).toBe(3);
    expect(tree.get('n0')!.children).toEqual(['n1', 'n2', 'n3']);
    expect(tree.size).toBe(4);
  });

  it('finds the best node and its path for a metric to maximise', () => {
    const tree = new RunTree('r', 'maximize');
    tree.loadSnapshot([
      done('n0', null, 0.5, 1, { children: ['n1', 'n2'] }),
      done('n1', 'n0', 0.9, 2, { children: ['n3'] }),
      done('n2', 'n0', 0.6, 3),
      done('n3', 'n1', 0.95, 4, { depth: 2 })
    ]);

    expect(tree.best()!.id).toBe('n3');
    expect([...tree.bestPath()]).toEqual(['n0', 'n1', 'n3']);
  });

  it('finds the lowest score best for an error metric and ignores failures', () => {
    const tree = new RunTree('r', 'minimize');
    tree.loadSnapshot([
      done('n0', null, 15000, 1, { children: ['n1', 'n2'] }),
      done('n1', 'n0', 14000, 2),
      node('n2', 'n0', { status: 'failed', dev_score: null, visits: 1 })
    ]);

    expect(tree.best()!.id).toBe('n1');
    expect(tree.shade(tree.get('n1')!)).toBe(1);
    expect(tree.shade(tree.get('n0')!)).toBe(0);
    expect(tree.shade(tree.get('n2')!)).toBeNull();
  });

  it('gives each finished simulation in finishing order with the best so far', () => {
    const tree = new RunTree('r', 'minimize');
    tree.loadSnapshot([
      done('n0', null, 10, 1, { children: ['n1', 'n2', 'n3'] }),
      done('n2', 'n0', 12, 3),
      done('n1', 'n0', 8, 2),
      node('n3', 'n0', {
        status: 'failed',
        visits: 1,
        timings: { finished: 4 }
      })
    ]);

    expect(tree.scoreSeries()).toEqual([
      { node: 'n0', score: 10, best: 10 },
      { node: 'n1', score: 8, best: 8 },
      { node: 'n2', score: 12, best: 8 },
      { node: 'n3', score: null, best: 8 }
    ]);
  });
});

/** A fake REST client that serves a run whose tree the test changes. */
class FakeClient implements SelaClient {
  runs: IRunSummary[] = [];
  tree: ITreeNode[] = [];
  calls: string[] = [];

  async listRuns(): Promise<IRunSummary[]> {
    this.calls.push('listRuns');
    return this.runs;
  }
  async getRun(runId: string): Promise<IRun> {
    this.calls.push(`getRun ${runId}`);
    const summary = this.runs.find(r => r.id === runId)!;
    return {
      ...summary,
      pid: 1,
      profile: {},
      data: {
        frame: 'data/frame.parquet',
        has_test_frame: false,
        has_test_labels: true,
        rows: { train: 300, dev: 100, test: 100 }
      },
      llm: null,
      tree: { max_depth: 2, seed: 0, counter: 1, root: 'n0', nodes: this.tree }
    };
  }
  async getNode(): Promise<never> {
    throw new Error('not used');
  }
}

const wait = (ms: number): Promise<void> =>
  new Promise(resolve => setTimeout(resolve, ms));

describe('SelaModel', () => {
  const summary = (id: string, created: number): IRunSummary =>
    runSummary(id, { created });

  it('lists runs newest first and selects the newest', async () => {
    const client = new FakeClient();
    client.runs = [summary('a', 1), summary('b', 2)];
    client.tree = [node('n0', null)];
    const model = new SelaModel({ client, refetchDelay: 5 });

    await model.refreshRuns();

    expect(model.runs.map(r => r.id)).toEqual(['b', 'a']);
    expect(model.selectedRunId).toBe('b');
    expect(model.tree!.direction).toBe('minimize');
    expect(model.runState).toBe('ready');
    model.dispose();
  });

  it('shows a finished simulation from its event at once, then reloads the run', async () => {
    const client = new FakeClient();
    client.runs = [summary('a', 1)];
    client.tree = [node('n0', null, { children: ['n1'] }), node('n1', 'n0')];
    const model = new SelaModel({ client, refetchDelay: 5 });
    await model.refreshRuns();
    let changes = 0;
    model.changed.connect(() => changes++);

    // The server has backpropagated by the time the sidebar re-fetches.
    client.tree = [
      node('n0', null, { children: ['n1'], visits: 1, status: 'done' }),
      done('n1', 'n0', 14000, 2)
    ];
    const event: ISelaEvent = {
      type: 'simulation_finished',
      run_id: 'a',
      time: 2,
      node: done('n1', 'n0', 14000, 2),
      best: best('n1', 14000)
    };
    model.handleEvent(event);

    expect(changes).toBeGreaterThan(0);
    expect(model.tree!.get('n1')!.status).toBe('done');
    expect(model.selectedRun!.best!.node).toBe('n1');
    await wait(30);
    expect(client.calls.filter(c => c === 'getRun a')).toHaveLength(2);
    expect(model.tree!.get('n0')!.visits).toBe(1);
    model.dispose();
  });

  it('carries the LLM tokens of a re-fetched run into the run list', async () => {
    const client = new FakeClient();
    client.runs = [summary('a', 1)];
    client.tree = [node('n0', null, { children: ['n1'] }), node('n1', 'n0')];
    const model = new SelaModel({ client, refetchDelay: 5 });
    await model.refreshRuns();
    expect(model.selectedRun!.tokens).toEqual(tokenUsage());

    const tokens = tokenUsage({
      prompt: 900,
      completion: 300,
      cost: 0.0003,
      calls: 1
    });
    client.runs = [{ ...summary('a', 1), tokens }];
    model.handleEvent({
      type: 'simulation_finished',
      run_id: 'a',
      time: 2,
      node: done('n1', 'n0', 14000, 2),
      best: best('n1', 14000)
    });
    await wait(30);

    expect(model.selectedRun!.tokens).toEqual(tokens);
    expect(model.runs[0].tokens).toEqual(tokens);
    model.dispose();
  });

  it('adds a run announced by run_started and selects it when none was', async () => {
    const client = new FakeClient();
    client.runs = [];
    const model = new SelaModel({ client, refetchDelay: 5 });
    await model.refreshRuns();
    expect(model.selectedRunId).toBeNull();

    client.runs = [summary('c', 3)];
    client.tree = [node('n0', null)];
    model.handleEvent({
      type: 'run_started',
      run_id: 'c',
      run: summary('c', 3)
    });
    await wait(30);

    expect(model.runs.map(r => r.id)).toEqual(['c']);
    expect(model.selectedRunId).toBe('c');
    expect(model.tree!.rootId).toBe('n0');
    model.dispose();
  });

  it('ignores node events of runs that are not selected', async () => {
    const client = new FakeClient();
    client.runs = [summary('a', 1), summary('b', 2)];
    client.tree = [node('n0', null)];
    const model = new SelaModel({ client, refetchDelay: 5 });
    await model.refreshRuns();

    model.handleEvent({
      type: 'node_added',
      run_id: 'a',
      node: node('n9', 'n0')
    });

    expect(model.tree!.get('n9')).toBeUndefined();
    model.dispose();
  });

  it('reports a failing run list as an error state', async () => {
    const client = new FakeClient();
    client.listRuns = async () => {
      throw new Error('server down');
    };
    const model = new SelaModel({ client });

    await model.refreshRuns();

    expect(model.runsState).toBe('error');
    expect(model.error).toBe('server down');
  });
});

describe('sortRuns', () => {
  it('puts the newest run first', () => {
    expect(
      sortRuns([
        runSummary('x', { created: 1, status: 'finished' }),
        runSummary('y', { created: 5 })
      ]).map(r => r.id)
    ).toEqual(['y', 'x']);
  });
});
