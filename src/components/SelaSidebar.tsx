import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { refreshIcon } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useState } from 'react';

import { CommandIDs } from '../commandIds';
import {
  formatDuration,
  formatScore,
  showFinal,
  tokenSummary
} from '../format';
import { SelaModel } from '../model';
import { IRunListEntry } from '../tokens';
import { useTranslation } from '../translation';
import { NodeDetail } from './NodeDetail';
import {
  datasetLabel,
  elapsedSeconds,
  progressLabel,
  RunList
} from './RunList';
import { ScoreChart } from './ScoreChart';
import { TreeView } from './TreeView';

/**
 * Props of {@link SelaSidebar}.
 */
export interface ISelaSidebarProps {
  /**
   * The sidebar's model.
   */
  model: SelaModel;
  /**
   * Run a command with arguments.
   */
  execute: (command: string, args?: Record<string, string>) => void;
  /**
   * For highlighting code.
   */
  languages?: IEditorLanguageRegistry | null;
}

/**
 * What to run in a notebook to start a search (code, not prose).
 */
const QUICKSTART = '%load_ext sela_jupyter\n%sela df target=price';

/**
 * Re-render on every model change; returns the model's version.
 */
function useModel(model: SelaModel): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const bump = (): void => setVersion(v => v + 1);
    model.changed.connect(bump);
    return () => {
      model.changed.disconnect(bump);
    };
  }, [model]);
  return version;
}

/**
 * A clock that ticks every second while `on`, for live elapsed times.
 */
function useClock(on: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!on) {
      return;
    }
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [on]);
  return now;
}

/**
 * The SELA sidebar: runs, the selected run's tree, score chart and the
 * selected node's detail.
 */
export function SelaSidebar(props: ISelaSidebarProps): JSX.Element {
  const { model, execute } = props;
  const trans = useTranslation();
  useModel(model);
  const runs = model.runs;
  const run = model.selectedRun;
  const now = useClock(runs.some(r => r.active));

  const onSelectRun = useCallback(
    (id: string) => void model.selectRun(id),
    [model]
  );
  const onSelectNode = useCallback(
    (id: string) => void model.selectNode(id),
    [model]
  );

  let body: JSX.Element;
  if (model.runsState === 'error' && runs.length === 0) {
    body = (
      <div className="jp-Sela-Error" role="alert">
        <p>{trans.__('Could not list SELA runs: %1', model.error ?? '')}</p>
        <p className="jp-Sela-Muted">
          {trans.__(
            'Is the %1 server extension enabled? Check %2.',
            'sela_jupyter',
            'jupyter server extension list'
          )}
        </p>
        <button
          className="jp-Button jp-mod-styled"
          onClick={() => void model.refreshRuns()}
        >
          {trans.__('Retry')}
        </button>
      </div>
    );
  } else if (model.runsState !== 'ready' && runs.length === 0) {
    body = (
      <div className="jp-Sela-Loading" role="status">
        {trans.__('Loading runs…')}
      </div>
    );
  } else if (runs.length === 0) {
    body = (
      <div className="jp-Sela-Empty">
        <p>{trans.__('No search yet.')}</p>
        <p className="jp-Sela-Muted">{trans.__('In a notebook, run:')}</p>
        <pre className="jp-Sela-Code">{QUICKSTART}</pre>
        <p className="jp-Sela-Muted">
          {trans.__(
            'The run appears here and its tree grows as simulations finish.'
          )}
        </p>
      </div>
    );
  } else {
    body = (
      <>
        <RunList
          runs={runs}
          selected={model.selectedRunId}
          onSelect={onSelectRun}
          now={now}
        />
        {run && (
          <RunView
            model={model}
            run={run}
            now={now}
            execute={execute}
            onSelectNode={onSelectNode}
            languages={props.languages}
          />
        )}
      </>
    );
  }

  return (
    <div className="jp-Sela-Sidebar">
      <header className="jp-Sela-Header">
        <h2>{trans.__('SELA search')}</h2>
        <button
          className="jp-Sela-IconButton"
          title={trans.__('Reload runs')}
          aria-label={trans.__('Reload runs')}
          onClick={() => {
            void model.refreshRuns().then(() => model.reloadRun());
          }}
        >
          <refreshIcon.react tag="span" />
        </button>
      </header>
      {body}
    </div>
  );
}

/**
 * Props of {@link RunView}.
 */
interface IRunViewProps {
  model: SelaModel;
  run: IRunListEntry;
  now: number;
  execute: (command: string, args?: Record<string, string>) => void;
  onSelectNode: (id: string) => void;
  languages?: IEditorLanguageRegistry | null;
}

/**
 * The selected run: summary, run actions, score chart, tree, node detail.
 */
function RunView(props: IRunViewProps): JSX.Element {
  const { model, run, execute } = props;
  const trans = useTranslation();
  const tree = model.tree;
  // A queued run waits for a slot on the server: Stop takes it out of the queue.
  const searching =
    (run.active && run.status === 'running') || run.status === 'queued';
  const hasBest = !!run.best?.node;
  const onRun = (command: string): void => execute(command, { runId: run.id });
  const selectedNode = model.selectedNodeId
    ? tree?.get(model.selectedNodeId)
    : undefined;
  const bestId = tree?.best()?.id ?? run.best?.node ?? null;
  const tokens = tokenSummary(run.tokens, trans);

  return (
    <section className="jp-Sela-Run" aria-label={trans.__('Run %1', run.id)}>
      <header className="jp-Sela-RunHeader">
        <div className="jp-Sela-RunTitle" title={run.id}>
          <span className={`jp-Sela-RunStatus jp-mod-${run.status}`}>
            {run.status}
          </span>{' '}
          {datasetLabel(run, trans)} → {run.task?.target ?? '?'}
        </div>
        <dl className="jp-Sela-Facts">
          <dt>{trans.__('metric')}</dt>
          <dd>
            {run.task?.direction === 'minimize'
              ? trans.__('%1 (lower is better)', run.task?.metric ?? '?')
              : trans.__('%1 (higher is better)', run.task?.metric ?? '?')}
          </dd>
          <dt>{trans.__('best dev')}</dt>
          <dd className="jp-Sela-RunBestScore">
            {formatScore(run.best?.dev_score)}
            {run.best?.node ? ` (${run.best.node})` : ''}
          </dd>
          {run.final && showFinal(run) && (
            <>
              <dt>{trans.__('final')}</dt>
              <dd
                className="jp-Sela-RunFinal"
                title={
                  run.final.members
                    .map(m => `${m.node} ×${m.weight}`)
                    .join(', ') +
                  ' · ' +
                  (run.final.chosen_on === 'cv'
                    ? trans.__(
                        'chosen on out-of-fold outputs over train + dev (%1)',
                        formatScore(run.final.cv_score)
                      )
                    : trans.__('chosen on dev'))
                }
              >
                {run.final.kind === 'ensemble'
                  ? trans._n(
                      'blend of %1 node',
                      'blend of %1 nodes',
                      run.final.members.length
                    )
                  : trans.__('node %1', run.final.members[0]?.node ?? '?')}
                {(run.final.threshold ?? null) !== null
                  ? trans.__(
                      ', threshold %1',
                      (run.final.threshold as number).toFixed(2)
                    )
                  : ''}
                {`: ${formatScore(run.final.dev_score)}`}
              </dd>
            </>
          )}
          <dt>{trans.__('simulations')}</dt>
          <dd aria-label={trans.__('simulations done of planned')}>
            {progressLabel(run)}
            {run.running ? ` · ${trans.__('%1 running', run.running)}` : ''}
          </dd>
          <dt>{trans.__('elapsed')}</dt>
          <dd>{formatDuration(elapsedSeconds(run, props.now))}</dd>
          {tokens && (
            <>
              <dt>{trans.__('LLM')}</dt>
              <dd className="jp-Sela-RunTokens">
                {tokens}
                {run.tokens?.calls
                  ? ` (${trans._n('%1 call', '%1 calls', run.tokens.calls)})`
                  : ''}
              </dd>
            </>
          )}
          {run.warnings && run.warnings.length > 0 && (
            <>
              <dt>{trans.__('data')}</dt>
              <dd className="jp-Sela-RunWarnings">
                <ul>
                  {run.warnings.map(line => (
                    <li key={line}>{line}</li>
                  ))}
                </ul>
              </dd>
            </>
          )}
          {run.error && (
            <>
              <dt>{trans.__('error')}</dt>
              <dd className="jp-Sela-ErrorText">{run.error}</dd>
            </>
          )}
        </dl>
        <div
          className="jp-Sela-Actions"
          role="toolbar"
          aria-label={trans.__('Run actions')}
        >
          <button
            className="jp-Button jp-mod-styled jp-mod-accept"
            disabled={!hasBest}
            title={trans.__(
              "Insert the run's final pipeline below the active cell (a blend of the best nodes when dev chose one)"
            )}
            onClick={() => onRun(CommandIDs.insertBestPipeline)}
          >
            {trans.__('Insert best pipeline')}
          </button>
          <button
            className="jp-Button jp-mod-styled"
            disabled={!hasBest}
            title={trans.__(
              "Export the run's final pipeline as a notebook next to your files"
            )}
            onClick={() => onRun(CommandIDs.exportRun)}
          >
            {trans.__('Export .ipynb')}
          </button>
          {searching ? (
            <button
              className="jp-Button jp-mod-styled jp-mod-warn"
              title={trans.__('Stop the search (it stays resumable)')}
              onClick={() => onRun(CommandIDs.stopRun)}
            >
              {trans.__('Stop')}
            </button>
          ) : (
            <button
              className="jp-Button jp-mod-styled"
              disabled={run.status === 'finished' || !!run.active}
              title={trans.__('Continue a stopped or interrupted search')}
              onClick={() => onRun(CommandIDs.resumeRun)}
            >
              {trans.__('Resume')}
            </button>
          )}
          <button
            className="jp-Button jp-mod-styled jp-mod-reject"
            title={trans.__('Delete the run and its directory')}
            onClick={() => onRun(CommandIDs.deleteRun)}
          >
            {trans.__('Delete')}
          </button>
        </div>
      </header>
      {model.runState === 'error' && (
        <div className="jp-Sela-Error" role="alert">
          {trans.__('Could not load the run: %1', model.error ?? '')}{' '}
          <button
            className="jp-Button jp-mod-styled"
            onClick={() => void model.reloadRun()}
          >
            {trans.__('Retry')}
          </button>
        </div>
      )}
      {!tree && model.runState === 'loading' && (
        <div className="jp-Sela-Loading" role="status">
          {trans.__('Loading the search tree…')}
        </div>
      )}
      {tree && (
        <>
          <ScoreChart
            points={tree.scoreSeries()}
            minimize={tree.direction === 'minimize'}
            metric={run.task?.metric}
          />
          <TreeView
            tree={tree}
            version={tree.version}
            selected={model.selectedNodeId}
            onSelect={props.onSelectNode}
          />
        </>
      )}
      {selectedNode ? (
        <NodeDetail
          node={selectedNode}
          detail={model.nodeDetail}
          state={model.nodeState}
          error={model.error}
          isBest={selectedNode.id === bestId}
          languages={props.languages}
          execute={command =>
            execute(command, { runId: run.id, nodeId: selectedNode.id })
          }
        />
      ) : (
        tree && (
          <p className="jp-Sela-Muted jp-Sela-Hint">
            {trans.__('Select a node to see its insights, code and output.')}
          </p>
        )
      )}
    </section>
  );
}
