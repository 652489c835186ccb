import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import React from 'react';

import { CommandIDs } from '../commandIds';
import { formatDuration, formatScore, tokenSummary } from '../format';
import { INodeDetail, ITreeNode, LoadState, STAGES } from '../tokens';
import { useTranslation } from '../translation';
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
  const trans = useTranslation();
  const done = node.status === 'done';
  const isRoot = node.parent === null;
  const stages = detail?.code
    ? STAGES.filter(stage => detail.code![stage] !== undefined)
    : [];
  const timings = detail?.timings ?? node.timings ?? {};
  const tokens = detail?.tokens;
  const tokenText = tokenSummary(tokens, trans);
  return (
    <section
      className="jp-Sela-Detail"
      aria-label={trans.__('Node %1', node.id)}
    >
      <header className="jp-Sela-DetailHeader">
        <span className={`jp-Sela-Status jp-mod-${node.status}`} />
        <strong>
          {node.id} · {node.stage}
        </strong>
        {isBest && (
          <span className="jp-Sela-Badge jp-mod-best">{trans.__('best')}</span>
        )}
        {node.pruned && (
          <span className="jp-Sela-Badge">{trans.__('pruned')}</span>
        )}
        {node.pinned && (
          <span className="jp-Sela-Badge">{trans.__('pinned')}</span>
        )}
        <span className="jp-Sela-DetailScore">
          {trans.__('dev %1', formatScore(node.dev_score))}
          {node.test_score !== undefined && node.test_score !== null
            ? ` · ${trans.__('test %1', formatScore(node.test_score))}`
            : ''}
          {' · '}
          {trans._n('%1 visit', '%1 visits', node.visits)}
          {' · '}
          {node.status}
        </span>
      </header>
      <div
        className="jp-Sela-Actions"
        role="toolbar"
        aria-label={trans.__('Node actions')}
      >
        <button
          className="jp-Button jp-mod-styled jp-mod-accept"
          disabled={!done}
          onClick={() => execute(CommandIDs.insertNodePipeline)}
          title={trans.__("Insert this node's pipeline below the active cell")}
        >
          {trans.__('Insert pipeline')}
        </button>
        <button
          className="jp-Button jp-mod-styled"
          disabled={!done || isRoot}
          onClick={() => execute(CommandIDs.insertNodeStage)}
          title={trans.__(
            'Insert only the %1 cell below the active cell',
            node.stage
          )}
        >
          {trans.__('Insert this stage')}
        </button>
        <button
          className="jp-Button jp-mod-styled"
          disabled={!detail?.notebook_path}
          onClick={() => execute(CommandIDs.openNodeNotebook)}
          title={
            detail?.notebook_path
              ? trans.__('Open the executed notebook of this simulation')
              : trans.__(
                  'The notebook is outside the server root or not written yet'
                )
          }
        >
          {trans.__('Open notebook')}
        </button>
      </div>
      <div
        className="jp-Sela-Actions"
        role="toolbar"
        aria-label={trans.__('Steering')}
      >
        <button
          className="jp-Button jp-mod-styled"
          disabled={node.pruned || node.depth >= STAGES.length}
          onClick={() => execute(CommandIDs.addInsight)}
          title={trans.__(
            'Write an insight for the next stage under this node'
          )}
        >
          {trans.__('Add insight')}
        </button>
        <button
          className="jp-Button jp-mod-styled jp-mod-warn"
          disabled={node.pruned || isRoot}
          onClick={() => execute(CommandIDs.pruneNode)}
          title={trans.__('Exclude this subtree from the search')}
        >
          {trans.__('Prune')}
        </button>
        <button
          className="jp-Button jp-mod-styled"
          disabled={node.pruned || node.pinned}
          onClick={() => execute(CommandIDs.pinNode)}
          title={trans.__('Simulate or expand this node next')}
        >
          {trans.__('Pin')}
        </button>
      </div>
      {state === 'loading' && !detail && (
        <div className="jp-Sela-Loading" role="status">
          {trans.__('Loading node %1…', node.id)}
        </div>
      )}
      {state === 'error' && (
        <div className="jp-Sela-Error" role="alert">
          {trans.__('Could not load node %1: %2', node.id, props.error ?? '')}
        </div>
      )}
      {detail && (
        <>
          <h4 className="jp-Sela-SectionTitle">
            {trans.__('Insights on the path')}
          </h4>
          {detail.path.length === 0 ? (
            <p className="jp-Sela-Muted">
              {trans.__('The root: the baseline pipeline with default stages.')}
            </p>
          ) : (
            <ol className="jp-Sela-Path">
              {detail.path.map(step => (
                <li key={step.id}>
                  <span className="jp-Sela-Stage">{step.stage}</span>{' '}
                  {step.insight?.text ?? ''}
                  {step.insight?.source === 'user' && (
                    <span className="jp-Sela-Badge">{trans.__('yours')}</span>
                  )}
                </li>
              ))}
            </ol>
          )}
          {(detail.error || node.error) && (
            <>
              <h4 className="jp-Sela-SectionTitle">{trans.__('Error')}</h4>
              <pre className="jp-Sela-Output jp-mod-error" role="alert">
                {detail.error ?? node.error}
                {detail.traceback ? `\n\n${detail.traceback}` : ''}
              </pre>
            </>
          )}
          {stages.map(stage => (
            <details key={stage} className="jp-Sela-StageCode" open>
              <summary>
                {detail.path.some(p => p.stage === stage)
                  ? trans.__('%1 code', stage)
                  : trans.__('%1 code (default)', stage)}
              </summary>
              <CodeBlock
                code={detail.code![stage]}
                languages={props.languages}
                label={trans.__('%1 code', stage)}
              />
            </details>
          ))}
          {detail.output_tail && (
            <>
              <h4 className="jp-Sela-SectionTitle">{trans.__('Output')}</h4>
              <pre
                className="jp-Sela-Output"
                aria-label={trans.__('Output tail')}
              >
                {detail.output_tail}
              </pre>
            </>
          )}
          <h4 className="jp-Sela-SectionTitle">{trans.__('Timings')}</h4>
          <dl className="jp-Sela-Facts">
            {Object.entries(timings)
              .filter(([key]) => key !== 'started' && key !== 'finished')
              .map(([key, value]) => (
                <React.Fragment key={key}>
                  <dt>{key}</dt>
                  <dd>{formatDuration(value)}</dd>
                </React.Fragment>
              ))}
            {tokens && tokenText && (
              <>
                <dt>{trans.__('LLM tokens')}</dt>
                <dd className="jp-Sela-NodeTokens">
                  {tokenText}
                  {' ('}
                  {trans.__(
                    '%1 prompt + %2 completion',
                    tokens.prompt ?? 0,
                    tokens.completion ?? 0
                  )}
                  {tokens.calls
                    ? `, ${trans._n('%1 call', '%1 calls', tokens.calls)}`
                    : ''}
                  {')'}
                </dd>
              </>
            )}
          </dl>
        </>
      )}
    </section>
  );
}
