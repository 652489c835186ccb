import React from 'react';

import { formatScore } from '../format';
import { IScorePoint } from '../model';
import { useTranslation } from '../translation';

/**
 * Props of {@link ScoreChart}.
 */
export interface IScoreChartProps {
  /**
   * Finished simulations in order, with the best so far.
   */
  points: IScorePoint[];
  /**
   * Whether lower scores are better; better is drawn up either way.
   */
  minimize: boolean;
  /**
   * The metric's name, for the label.
   */
  metric?: string;
}

const WIDTH = 240;
const HEIGHT = 80;
const PAD = 6;

/**
 * A small inline SVG chart: each simulation's dev score (dots; failures as
 * crosses on the floor) and the best-so-far line.
 */
export const ScoreChart = React.memo(function ScoreChart(
  props: IScoreChartProps
): JSX.Element {
  const { points, minimize, metric } = props;
  const trans = useTranslation();
  const scores = points
    .map(p => p.score)
    .filter((s): s is number => s !== null);
  if (points.length === 0) {
    return (
      <div className="jp-Sela-Chart jp-Sela-Chart-empty">
        {trans.__('The score chart appears after the first simulation.')}
      </div>
    );
  }
  let lo = Math.min(...scores);
  let hi = Math.max(...scores);
  if (!(hi > lo)) {
    lo = (Number.isFinite(lo) ? lo : 0) - 1;
    hi = (Number.isFinite(hi) ? hi : 0) + 1;
  }
  const n = points.length;
  const x = (i: number): number =>
    n === 1 ? WIDTH / 2 : PAD + (i * (WIDTH - 2 * PAD)) / (n - 1);
  const y = (s: number): number => {
    const t = (s - lo) / (hi - lo); // 0 = lowest score
    const up = minimize ? 1 - t : t; // 1 = best
    return HEIGHT - PAD - up * (HEIGHT - 2 * PAD);
  };
  // A step line: the best so far only changes when a simulation beats it.
  let line = '';
  points.forEach((p, i) => {
    if (p.best === null) {
      return;
    }
    line += line
      ? ` H${x(i).toFixed(1)} V${y(p.best).toFixed(1)}`
      : `M${x(i).toFixed(1)},${y(p.best).toFixed(1)}`;
  });
  const last = points[n - 1];
  const metricName = metric ?? trans.__('score');
  return (
    <figure className="jp-Sela-Chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={trans._n(
          'Dev %2 of %1 simulation; best %3',
          'Dev %2 of %1 simulations; best %3',
          n,
          metricName,
          formatScore(last.best)
        )}
      >
        <line
          className="jp-Sela-Chart-axis"
          x1={PAD}
          x2={WIDTH - PAD}
          y1={HEIGHT - PAD}
          y2={HEIGHT - PAD}
        />
        {line && <path className="jp-Sela-Chart-best" d={line.trim()} />}
        {points.map((p, i) =>
          p.score === null ? (
            <g key={p.node} className="jp-Sela-Chart-failed">
              <title>{trans.__('%1: failed', p.node)}</title>
              <path d={`M${x(i) - 2},${HEIGHT - PAD - 2} l4,4 m0,-4 l-4,4`} />
            </g>
          ) : (
            <circle
              key={p.node}
              className="jp-Sela-Chart-point"
              cx={x(i)}
              cy={y(p.score)}
              r={2.2}
            >
              <title>{`${p.node}: ${formatScore(p.score)}`}</title>
            </circle>
          )
        )}
      </svg>
      <figcaption>
        {minimize
          ? trans.__(
              'dev %1 per simulation (lower is better, drawn up); line: best so far %2',
              metricName,
              formatScore(last.best)
            )
          : trans.__(
              'dev %1 per simulation (higher is better, drawn up); line: best so far %2',
              metricName,
              formatScore(last.best)
            )}
      </figcaption>
    </figure>
  );
});
