import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import React from 'react';

import { CommandIDs } from '../commandIds';
import { formatDuration, formatScore } from '../format';
import { LoadState } from '../model';
import { INodeDetail, ITreeNode, STAGES } from '../tokens';
import { CodeBlock } from './CodeBlock';

/**
 * Props of {@link NodeDetail}.
 */
export interface INodeDetailProps {
  /**
   * The selected node as the tree knows it (live).
   */
  node: ITreeNode;
  /**
   * Its detail from REST, once loaded.
   */
  detail: INodeDetail | null;
  /**
   * Loading state of the detail.
   */
  state: LoadState;
  /**
   * The last error message.
   */
  error: string | null;
  /**
   * Whether the node is the run's best.
   */
  isBest: boolean;
  /**
   * Run a sela command on this node.
   */
  execute: (command: string) => void;
  /**
   * For highlighting code.
   */
  languages?: IEditorLanguageRegistry | null;
}

/**
 * A node's insights along its path, each stage's code, output tail or
 * traceback, timings and tokens, with the node actions.
 */
export function NodeDetail(props: INodeDetailProps): JSX.Element {
  const { node, detail, state, isBest, execute } = props;
  const done = node.status === 'done';
  const isRoot = node.parent === null;
  const stages = detail?.code
    ? STAGES.filter(stage => detail.code![stage] !== undefined)
    : [];
  const timings = detail?.timings ?? node.timings ?? {};
  const tokens = detail?.tokens;
  return (
    <section className="jp-Sela-Detail" aria-label={`Node ${node.id}`}>
      <header className="jp-Sela-DetailHeader">
        <span className={`jp-Sela-Status jp-mod-${node.status}`} />
        <strong>
          {node.id} · {node.stage}
        </strong>
        {isBest && <span className="jp-Sela-Badge jp-mod-best">best</span>}
        {node.pruned && <span className="jp-Sela-Badge">pruned</span>}
        {node.pinned && <span className="jp-Sela-Badge">pinned</span>}
        <span className="jp-Sela-DetailScore">
          dev {formatScore(node.dev_score)}
          {node.test_score !== undefined && node.test_score !== null
            ? ` · test ${formatScore(node.test_score)}`
            : ''}{' '}
          · {node.visits} visits · {node.status}
        </span>
      </header>
      <div className="jp-Sela-Actions" role="toolbar" aria-label="Node actions">
        <button
          className="jp-Button jp-mod-styled jp-mod-accept"
          disabled={!done}
          onClick={() => execute(CommandIDs.insertNodePipeline)}
          title="Insert this node's pipeline below the active cell"
        >
          Insert pipeline
        </button>
        <button
          className="jp-Button jp-mod-styled"
          disabled={!done || isRoot}
          onClick={() => execute(CommandIDs.insertNodeStage)}
          title={`Insert only the ${node.stage} cell below the active cell`}
        >
          Insert this stage
        </button>
        <button
          className="jp-Button jp-mod-styled"
          disabled={!detail?.notebook_path}
          onClick={() => execute(CommandIDs.openNodeNotebook)}
          title={
            detail?.notebook_path
              ? 'Open the executed notebook of this simulation'
              : 'The notebook is outside the server root or not written yet'
          }
        >
          Open notebook
        </button>
      </div>
      <div className="jp-Sela-Actions" role="toolbar" aria-label="Steering">
        <button
          className="jp-Button jp-mod-styled"
          disabled={node.pruned || node.depth >= STAGES.length}
          onClick={() => execute(CommandIDs.addInsight)}
          title="Write an insight for the next stage under this node"
        >
          Add insight
        </button>
        <button
          className="jp-Button jp-mod-styled jp-mod-warn"
          disabled={node.pruned || isRoot}
          onClick={() => execute(CommandIDs.pruneNode)}
          title="Exclude this subtree from the search"
        >
          Prune
        </button>
        <button
          className="jp-Button jp-mod-styled"
          disabled={node.pruned || node.pinned}
          onClick={() => execute(CommandIDs.pinNode)}
          title="Simulate or expand this node next"
        >
          Pin
        </button>
      </div>
      {state === 'loading' && !detail && (
        <div className="jp-Sela-Loading" role="status">
          Loading node {node.id}…
        </div>
      )}
      {state === 'error' && (
        <div className="jp-Sela-Error" role="alert">
          Could not load node {node.id}: {props.error}
        </div>
      )}
      {detail && (
        <>
          <h4 className="jp-Sela-SectionTitle">Insights on the path</h4>
          {detail.path.length === 0 ? (
            <p className="jp-Sela-Muted">
              The root: the baseline pipeline with default stages.
            </p>
          ) : (
            <ol className="jp-Sela-Path">
              {detail.path.map(step => (
                <li key={step.id}>
                  <span className="jp-Sela-Stage">{step.stage}</span>{' '}
                  {step.insight?.text ?? ''}
                  {step.insight?.source === 'user' && (
                    <span className="jp-Sela-Badge">yours</span>
                  )}
                </li>
              ))}
            </ol>
          )}
          {(detail.error || node.error) && (
            <>
              <h4 className="jp-Sela-SectionTitle">Error</h4>
              <pre className="jp-Sela-Output jp-mod-error" role="alert">
                {detail.error ?? node.error}
                {detail.traceback ? `\n\n${detail.traceback}` : ''}
              </pre>
            </>
          )}
          {stages.map(stage => (
            <details key={stage} className="jp-Sela-StageCode" open>
              <summary>
                {stage} code
                {detail.path.some(p => p.stage === stage) ? '' : ' (default)'}
              </summary>
              <CodeBlock
                code={detail.code![stage]}
                languages={props.languages}
                label={`${stage} code`}
              />
            </details>
          ))}
          {detail.output_tail && (
            <>
              <h4 className="jp-Sela-SectionTitle">Output</h4>
              <pre className="jp-Sela-Output" aria-label="Output tail">
                {detail.output_tail}
              </pre>
            </>
          )}
          <h4 className="jp-Sela-SectionTitle">Timings</h4>
          <dl className="jp-Sela-Facts">
            {Object.entries(timings)
              .filter(([key]) => key !== 'started' && key !== 'finished')
              .map(([key, value]) => (
                <React.Fragment key={key}>
                  <dt>{key}</dt>
                  <dd>{formatDuration(value)}</dd>
                </React.Fragment>
              ))}
            {tokens && (tokens.prompt ?? 0) + (tokens.completion ?? 0) > 0 && (
              <>
                <dt>LLM tokens</dt>
                <dd>
                  {tokens.prompt ?? 0} prompt + {tokens.completion ?? 0}{' '}
                  completion
                  {tokens.calls ? ` (${tokens.calls} calls)` : ''}
                </dd>
              </>
            )}
          </dl>
        </>
      )}
    </section>
  );
}
