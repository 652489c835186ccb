import {
  formatCost,
  formatTokenCount,
  showFinal,
  tokenSummary,
  tokenTotal
} from '../format';
import { IFinal } from '../tokens';
import { loadTranslation } from '../translation';
import { best, final, runSummary, tokenUsage } from './fixtures';

const trans = loadTranslation();

describe('token formatting', () => {
  it('shortens token counts to thousands and millions', () => {
    expect(formatTokenCount(0)).toBe('0');
    expect(formatTokenCount(950)).toBe('950');
    expect(formatTokenCount(12_345)).toBe('12.3k');
    expect(formatTokenCount(12_000)).toBe('12k');
    expect(formatTokenCount(999_990)).toBe('1M');
    expect(formatTokenCount(1_234_567)).toBe('1.2M');
  });

  it('gives cents for costs of a cent or more and more digits below', () => {
    expect(formatCost(0.0412)).toBe('$0.04');
    expect(formatCost(1.5)).toBe('$1.50');
    expect(formatCost(0.00052)).toBe('$0.0005');
    expect(formatCost(0.00001)).toBe('<$0.0001');
    expect(formatCost(0)).toBe('$0');
    expect(formatCost(undefined)).toBe('$0');
  });

  it('sums prompt and completion tokens', () => {
    expect(tokenTotal(tokenUsage({ prompt: 10_000, completion: 2_300 }))).toBe(
      12_300
    );
    expect(tokenTotal(null)).toBe(0);
    expect(tokenTotal(tokenUsage())).toBe(0);
  });

  it('summarises tokens and cost, and nothing for an offline run', () => {
    expect(
      tokenSummary(
        { prompt: 10_000, completion: 2_300, cost: 0.0412, calls: 7 },
        trans
      )
    ).toBe('12.3k tokens · $0.04');
    expect(tokenSummary(tokenUsage({ prompt: 1 }), trans)).toBe('1 token · $0');
    expect(
      tokenSummary({ prompt: 0, completion: 0, cost: 0, calls: 0 }, trans)
    ).toBeNull();
    expect(tokenSummary(undefined, trans)).toBeNull();
  });
});

describe('showFinal', () => {
  const run = (candidate: IFinal | null) =>
    runSummary('r', { best: best('n3', 1), final: candidate });

  it('shows a blend, and a single node other than the best on dev', () => {
    const members = [{ node: 'n3', weight: 1 }];
    expect(showFinal(run(null))).toBe(false);
    expect(showFinal(run(final({ members })))).toBe(false);
    expect(
      showFinal(run(final({ members: [{ node: 'n9', weight: 1 }] })))
    ).toBe(true);
    expect(
      showFinal(
        run(
          final({
            kind: 'ensemble',
            members: [...members, { node: 'n9', weight: 2 }],
            chosen_on: 'cv',
            cv_score: 0.9
          })
        )
      )
    ).toBe(true);
  });

  it('shows the best node when it has its own decision threshold', () => {
    const members = [{ node: 'n3', weight: 1 }];
    expect(showFinal(run(final({ members, threshold: 0.38 })))).toBe(true);
    expect(showFinal(run(final({ members, threshold: null })))).toBe(false);
  });
});
