import { visibleRows } from '../components/TreeView';
import { RunTree } from '../model';
import { ITreeNode } from '../tokens';
import { treeNode } from './fixtures';

function node(
  id: string,
  parent: string | null,
  children: string[] = [],
  visits = 0
): ITreeNode {
  return treeNode(id, parent, {
    children,
    visits,
    status: visits ? 'done' : 'queued',
    dev_score: visits ? 1 : null
  });
}

describe('visibleRows', () => {
  it('does not walk a subtree the user collapsed', () => {
    const tree = new RunTree('r');
    tree.loadSnapshot([
      node('n0', null, ['n1'], 2),
      node('n1', 'n0', ['n2'], 1),
      node('n2', 'n1')
    ]);

    const open = visibleRows(tree, new Map(), new Map(), new Set());
    const closed = visibleRows(
      tree,
      new Map([['n1', false]]),
      new Map(),
      new Set()
    );

    expect(open.rows.map(r => r.node?.id)).toEqual(['n0', 'n1', 'n2']);
    expect(closed.rows.map(r => r.node?.id)).toEqual(['n0', 'n1']);
  });

  it('caps the rows of a huge tree and the children shown per node', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `c${i}`);
    const tree = new RunTree('r');
    tree.loadSnapshot([
      node('n0', null, ids, 1),
      ...ids.map(id => node(id, 'n0'))
    ]);

    const some = visibleRows(tree, new Map(), new Map(), new Set());
    const capped = visibleRows(
      tree,
      new Map(),
      new Map([['n0', 1000]]),
      new Set(),
      50
    );

    expect(some.rows).toHaveLength(1 + 25 + 1);
    expect(some.rows.at(-1)!.more).toEqual({ parent: 'n0', hidden: 975 });
    expect(capped.rows).toHaveLength(50);
    expect(capped.truncated).toBe(true);
  });
});
