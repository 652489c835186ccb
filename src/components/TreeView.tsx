import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import React, { useCallback, useMemo, useState } from 'react';

import { formatScore, shorten } from '../format';
import { RunTree } from '../model';
import { ITreeNode } from '../tokens';
import { useTranslation } from '../translation';

/**
 * Rows rendered at most; the rest of a huge tree is summarised.
 */
export const MAX_ROWS = 400;

/**
 * Children shown per node before a "show more" row.
 */
export const MAX_CHILDREN = 25;

/**
 * Below this size, every visited subtree starts expanded.
 */
const AUTO_EXPAND_LIMIT = 300;

/**
 * One visible row of the flattened tree.
 */
export interface ITreeRow {
  /**
   * The node, or null for a "more children" row.
   */
  node: ITreeNode | null;
  /**
   * Indentation level.
   */
  level: number;
  /**
   * Whether the node has children.
   */
  hasChildren: boolean;
  /**
   * Whether its children are shown.
   */
  expanded: boolean;
  /**
   * For a "more" row: the parent and how many children are hidden.
   */
  more?: { parent: string; hidden: number };
}

/**
 * The visible rows of a tree, depth first, honouring what the user expanded
 * or collapsed; collapsed subtrees are never walked.
 *
 * A node is expanded when the user opened it, or, unless the user closed
 * it, when it is on the best path, is the root, or (in smaller trees) has
 * been visited.
 */
export function visibleRows(
  tree: RunTree,
  toggled: Map<string, boolean>,
  shown: Map<string, number>,
  keepOpen: Set<string>,
  maxRows = MAX_ROWS
): { rows: ITreeRow[]; truncated: boolean } {
  const rows: ITreeRow[] = [];
  const root = tree.rootId;
  if (!root) {
    return { rows, truncated: false };
  }
  const auto = tree.size <= AUTO_EXPAND_LIMIT;
  let truncated = false;
  const walk = (id: string, level: number): void => {
    if (rows.length >= maxRows) {
      truncated = true;
      return;
    }
    const node = tree.get(id);
    if (!node) {
      return;
    }
    const hasChildren = node.children.length > 0;
    const expanded =
      hasChildren &&
      (toggled.get(id) ??
        (node.parent === null ||
          keepOpen.has(id) ||
          (auto && node.visits > 0)));
    rows.push({ node, level, hasChildren, expanded });
    if (!expanded) {
      return;
    }
    const limit = shown.get(id) ?? MAX_CHILDREN;
    const children = node.children;
    for (const childId of children.slice(0, limit)) {
      walk(childId, level + 1);
      if (truncated) {
        return;
      }
    }
    if (children.length > limit) {
      rows.push({
        node: null,
        level: level + 1,
        hasChildren: false,
        expanded: false,
        more: { parent: id, hidden: children.length - limit }
      });
    }
  };
  walk(root, 0);
  return { rows, truncated };
}

/**
 * Props of {@link TreeView}.
 */
export interface ITreeViewProps {
  /**
   * The tree to show.
   */
  tree: RunTree;
  /**
   * Bumped on every tree change (the tree object itself is mutable).
   */
  version: number;
  /**
   * The selected node.
   */
  selected: string | null;
  /**
   * Select a node.
   */
  onSelect: (id: string) => void;
}

/**
 * The search tree: collapsible rows with stage, insight, dev score, visits
 * and status, shaded by score, the best path highlighted.
 */
export function TreeView(props: ITreeViewProps): JSX.Element {
  const { tree, version, selected, onSelect } = props;
  const trans = useTranslation();
  const [toggled, setToggled] = useState(new Map<string, boolean>());
  const [shown, setShown] = useState(new Map<string, number>());

  const bestPath = useMemo(() => tree.bestPath(), [tree, version]);
  const keepOpen = useMemo(
    () => new Set([...bestPath, ...tree.pathTo(selected).slice(0, -1)]),
    [bestPath, tree, version, selected]
  );
  const { rows, truncated } = useMemo(
    () => visibleRows(tree, toggled, shown, keepOpen),
    [tree, version, toggled, shown, keepOpen]
  );
  const bestId = useMemo(() => tree.best()?.id ?? null, [tree, version]);

  const onToggle = useCallback((id: string, open: boolean) => {
    setToggled(prev => new Map(prev).set(id, open));
  }, []);
  const onMore = useCallback((parent: string) => {
    setShown(prev =>
      new Map(prev).set(parent, (prev.get(parent) ?? MAX_CHILDREN) * 2)
    );
  }, []);

  if (rows.length === 0) {
    return (
      <div className="jp-Sela-Empty">
        {trans.__('The tree appears when the search expands its root.')}
      </div>
    );
  }
  return (
    <div
      className="jp-Sela-Tree"
      role="tree"
      aria-label={trans.__('Search tree')}
    >
      {rows.map(row =>
        row.node ? (
          <TreeRow
            key={row.node.id}
            node={row.node}
            level={row.level}
            hasChildren={row.hasChildren}
            expanded={row.expanded}
            onBestPath={bestPath.has(row.node.id)}
            isBest={row.node.id === bestId}
            isSelected={row.node.id === selected}
            shade={tree.shade(row.node)}
            onSelect={onSelect}
            onToggle={onToggle}
          />
        ) : (
          <button
            key={`more-${row.more!.parent}`}
            className="jp-Sela-TreeMore"
            style={{ paddingLeft: `${row.level * 12 + 20}px` }}
            onClick={() => onMore(row.more!.parent)}
          >
            {trans._n(
              'Show %2 more of %1 child',
              'Show %2 more of %1 children',
              row.more!.hidden,
              Math.min(row.more!.hidden, MAX_CHILDREN)
            )}
          </button>
        )
      )}
      {truncated && (
        <div className="jp-Sela-TreeTruncated">
          {trans.__(
            'Showing the first %1 rows of %2 nodes: collapse subtrees to see the rest.',
            MAX_ROWS,
            tree.size
          )}
        </div>
      )}
    </div>
  );
}

/**
 * Props of one tree row.
 */
interface ITreeRowProps {
  node: ITreeNode;
  level: number;
  hasChildren: boolean;
  expanded: boolean;
  onBestPath: boolean;
  isBest: boolean;
  isSelected: boolean;
  shade: number | null;
  onSelect: (id: string) => void;
  onToggle: (id: string, open: boolean) => void;
}

/**
 * One node of the tree; memoized, so a live update re-renders only the rows
 * whose node changed.
 */
const TreeRow = React.memo(function TreeRow(props: ITreeRowProps): JSX.Element {
  const { node, level, hasChildren, expanded, shade } = props;
  const trans = useTranslation();
  const Caret = expanded ? caretDownIcon : caretRightIcon;
  const classes = ['jp-Sela-TreeRow', `jp-mod-${node.status}`];
  if (props.onBestPath) {
    classes.push('jp-mod-bestPath');
  }
  if (props.isBest) {
    classes.push('jp-mod-best');
  }
  if (props.isSelected) {
    classes.push('jp-mod-selected');
  }
  if (node.pruned) {
    classes.push('jp-mod-pruned');
  }
  if (node.pinned) {
    classes.push('jp-mod-pinned');
  }
  const label = node.insight?.text ?? trans.__('root: baseline pipeline');
  const names: string[] = [node.id, node.stage, node.status];
  if (node.pruned) {
    names.push(trans.__('pruned'));
  }
  if (props.isBest) {
    names.push(trans.__('best'));
  }
  const style: React.CSSProperties = {
    paddingLeft: `${level * 12 + 2}px`
  };
  if (shade !== null) {
    // Shade by score with a theme colour: stronger is better.
    style.backgroundImage = `linear-gradient(to right, color-mix(in srgb, var(--jp-success-color1) ${Math.round(
      8 + shade * 27
    )}%, transparent), transparent)`;
  }
  return (
    <div
      className={classes.join(' ')}
      role="treeitem"
      aria-level={level + 1}
      aria-selected={props.isSelected}
      aria-expanded={hasChildren ? expanded : undefined}
      aria-label={names.join(' ')}
      data-node-id={node.id}
      data-status={node.status}
      title={`${node.id} · ${node.stage}\n${label}${
        node.error ? `\n${node.error}` : ''
      }`}
      style={style}
      onClick={() => props.onSelect(node.id)}
    >
      <span
        className="jp-Sela-TreeCaret"
        onClick={event => {
          event.stopPropagation();
          if (hasChildren) {
            props.onToggle(node.id, !expanded);
          }
        }}
      >
        {hasChildren ? <Caret.react tag="span" /> : null}
      </span>
      <span className={`jp-Sela-Status jp-mod-${node.status}`} />
      <span className="jp-Sela-Stage">{node.stage}</span>
      <span className="jp-Sela-Insight">{shorten(label, 80)}</span>
      {node.pruned && (
        <span className="jp-Sela-Badge">{trans.__('pruned')}</span>
      )}
      {node.pinned && (
        <span className="jp-Sela-Badge">{trans.__('pinned')}</span>
      )}
      {node.insight?.source === 'user' && (
        <span className="jp-Sela-Badge">{trans.__('yours')}</span>
      )}
      <span className="jp-Sela-Score">
        {node.status === 'failed'
          ? trans.__('failed')
          : formatScore(node.dev_score)}
      </span>
      <span className="jp-Sela-Visits" title={trans.__('visits')}>
        {node.visits}
      </span>
    </div>
  );
});
