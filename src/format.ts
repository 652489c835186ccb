/**
 * Small formatting helpers shared by the sidebar's components.
 */

/**
 * A score with 4 significant digits, or an em dash.
 */
export function formatScore(score: number | null | undefined): string {
  if (score === null || score === undefined || !Number.isFinite(score)) {
    return '—';
  }
  const abs = Math.abs(score);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) {
    return score.toExponential(2);
  }
  return Number(score.toPrecision(4)).toString();
}

/**
 * A duration in seconds as `12s`, `3m 04s` or `1h 02m`.
 */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '—';
  }
  if (seconds < 10) {
    return `${seconds.toFixed(1)}s`;
  }
  const s = Math.round(seconds);
  if (s < 60) {
    return `${s}s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  }
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/**
 * The first `max` characters of a text, with an ellipsis when cut.
 */
export function shorten(text: string | null | undefined, max = 60): string {
  if (!text) {
    return '';
  }
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
