/**
 * Small formatting helpers shared by the sidebar's components.
 */
import type { TranslationBundle } from '@jupyterlab/translation';

import { IRunSummary, ITokenUsage } from './tokens';

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

/**
 * Prompt plus completion tokens; 0 for an offline run or node.
 */
export function tokenTotal(usage: ITokenUsage | null | undefined): number {
  return (usage?.prompt ?? 0) + (usage?.completion ?? 0);
}

/**
 * A token count as `950`, `12.3k` or `1.2M`.
 */
export function formatTokenCount(count: number): string {
  const short = (value: number): string => Number(value.toFixed(1)).toString();
  if (count >= 999_950) {
    return `${short(count / 1e6)}M`;
  }
  if (count >= 1000) {
    return `${short(count / 1e3)}k`;
  }
  return `${Math.round(count)}`;
}

/**
 * An estimated cost in US dollars: `$1.25`, `$0.04`, `$0.0005` or `$0`.
 */
export function formatCost(cost: number | null | undefined): string {
  if (!cost || !Number.isFinite(cost) || cost <= 0) {
    return '$0';
  }
  if (cost >= 0.01) {
    return `$${cost.toFixed(2)}`;
  }
  return cost >= 0.0001 ? `$${cost.toFixed(4)}` : '<$0.0001';
}

/**
 * `12.3k tokens · $0.04`, or null when no LLM tokens were used (offline).
 */
export function tokenSummary(
  usage: ITokenUsage | null | undefined,
  trans: TranslationBundle
): string | null {
  const total = tokenTotal(usage);
  if (total <= 0) {
    return null;
  }
  return trans._n(
    '%2 token · %3',
    '%2 tokens · %3',
    total,
    formatTokenCount(total),
    formatCost(usage?.cost)
  );
}

/**
 * Whether a run's final candidate earns a line of its own: a blend of nodes,
 * a node with its own decision threshold, or a single node other than the
 * best on dev (chosen out of fold).
 */
export function showFinal(run: IRunSummary): boolean {
  const final = run.final;
  if (!final || final.members.length === 0) {
    return false;
  }
  return (
    final.kind === 'ensemble' ||
    (final.threshold ?? null) !== null ||
    final.members[0].node !== run.best?.node
  );
}
