import { STAGES } from '../tokens';

describe('STAGES', () => {
  it('lists the tree levels in pipeline order, ensemble last', () => {
    expect(STAGES).toEqual([
      'eda',
      'preprocess',
      'features',
      'model',
      'ensemble'
    ]);
  });
});
