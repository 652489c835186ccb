import type { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { formatDuration, formatScore, tokenSummary } from '../format';
import { IRunListEntry } from '../tokens';
import { useTranslation } from '../translation';

/**
 * What the run list shows of a run's data set.
 */
export function datasetLabel(
  run: IRunListEntry,
  trans: TranslationBundle
): string {
  if (run.name) {
    return run.name;
  }
  const rows = run.data?.rows;
  if (rows) {
    const total = Object.values(rows).reduce((a, b) => a + b, 0);
    return trans._n('%1 row', '%1 rows', total);
  }
  return run.source ? trans.__('%1 data', run.source) : trans.__('data');
}

/**
 * Simulations done and planned.
 */
export function progressLabel(run: IRunListEntry): string {
  const planned = run.options?.rollouts;
  const done = run.simulations ?? 0;
  return typeof planned === 'number' ? `${done}/${planned}` : `${done}`;
}

/**
 * Elapsed time: finished runs from their record, live ones from the clock.
 */
export function elapsedSeconds(run: IRunListEntry, now: number): number | null {
  const elapsed = run.timings?.elapsed;
  if (run.active && run.created && run.status === 'running') {
    return Math.max(elapsed ?? 0, now / 1000 - run.created);
  }
  return elapsed ?? null;
}

/**
 * Props of {@link RunList}.
 */
export interface IRunListProps {
  /**
   * Runs, newest first.
   */
  runs: IRunListEntry[];
  /**
   * The selected run.
   */
  selected: string | null;
  /**
   * Select a run.
   */
  onSelect: (id: string) => void;
  /**
   * Milliseconds since the epoch, for live elapsed times.
   */
  now: number;
}

/**
 * The runs, newest first: status, data set, target, metric, LLM tokens and
 * cost (when an LLM was used), best score, simulations done / planned and
 * elapsed time.
 */
export function RunList(props: IRunListProps): JSX.Element {
  const trans = useTranslation();
  return (
    <ul
      className="jp-Sela-RunList"
      role="listbox"
      aria-label={trans.__('SELA runs')}
    >
      {props.runs.map(run => {
        const selected = run.id === props.selected;
        const tokens = tokenSummary(run.tokens, trans);
        return (
          <li
            key={run.id}
            role="option"
            aria-selected={selected}
            aria-label={trans.__('Run %1', run.id)}
            data-run-id={run.id}
            className={`jp-Sela-RunItem${selected ? ' jp-mod-selected' : ''}`}
            onClick={() => props.onSelect(run.id)}
            title={run.id}
          >
            <span className={`jp-Sela-RunStatus jp-mod-${run.status}`}>
              {run.status}
            </span>
            <span className="jp-Sela-RunName">{datasetLabel(run, trans)}</span>
            <span className="jp-Sela-RunMeta">
              {run.task?.target ?? '?'} · {run.task?.metric ?? '?'}
              {tokens && (
                <span
                  className="jp-Sela-RunTokens"
                  title={trans.__('LLM tokens and estimated cost')}
                >
                  {' · '}
                  {tokens}
                </span>
              )}
            </span>
            <span
              className="jp-Sela-RunBest"
              title={trans.__('best dev score')}
            >
              {formatScore(run.best?.dev_score)}
            </span>
            <span
              className="jp-Sela-RunProgress"
              title={trans.__('simulations done/planned')}
            >
              {progressLabel(run)}
            </span>
            <span className="jp-Sela-RunElapsed" title={trans.__('elapsed')}>
              {formatDuration(elapsedSeconds(run, props.now))}
            </span>
          </li>
        );
      })}
    </ul>
  );
}
