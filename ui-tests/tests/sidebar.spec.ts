import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';
import * as path from 'path';

/**
 * The SELA sidebar against a real JupyterLab with the real server extension:
 * a `%sela` search in a notebook, the live tree, node detail, inserting the
 * best pipeline and running it, steering and stopping a second run.
 */

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples');
const HOUSING = path.join(EXAMPLES, 'housing.csv');
const EXAMPLE_NOTEBOOK = path.join(EXAMPLES, 'house_prices.ipynb');
// `SELA_SCREENSHOT=1 jlpm test` refreshes the README's screenshot.
const SCREENSHOT = process.env.SELA_SCREENSHOT
  ? path.resolve(__dirname, '..', '..', 'docs', 'sidebar.png')
  : path.resolve(__dirname, '..', 'test-results', 'sidebar.png');

test.use({ viewport: { width: 1400, height: 900 } });

/** The SELA panel, opened from its tab in the left sidebar. */
async function openSidebar(page: IJupyterLabPageFixture): Promise<Locator> {
  const tab = page.getByRole('tab', { name: 'SELA' });
  await expect(tab).toBeVisible();
  if ((await tab.getAttribute('aria-selected')) !== 'true') {
    await tab.click();
  }
  const panel = page.locator('#sela-jupyter-sidebar');
  await expect(panel).toBeVisible();
  return panel;
}

/** Rows of simulated (done or failed) nodes in the tree. */
function simulatedRows(panel: Locator): Locator {
  return panel.locator(
    '[role="treeitem"][data-status="done"], [role="treeitem"][data-status="failed"]'
  );
}

/**
 * A notebook with the housing data loaded into `df` (then changed by `extra`,
 * if given) whose third cell runs `selaLine`; all three cells are run.
 */
async function startSearch(
  page: IJupyterLabPageFixture,
  tmpPath: string,
  selaLine: string,
  extra = ''
): Promise<void> {
  await page.contents.uploadFile(HOUSING, `${tmpPath}/housing.csv`);
  await page.notebook.createNew('search.ipynb');
  await page.notebook.setCell(
    0,
    'code',
    `import pandas as pd\ndf = pd.read_csv('housing.csv')\n${extra}print(df.shape)`
  );
  await page.notebook.addCell('code', '%load_ext sela_jupyter');
  await page.notebook.addCell('code', selaLine);
  for (const index of [0, 1, 2]) {
    await page.notebook.runCell(index);
  }
}

/**
 * The example notebook, opened next to its data; its data, `%load_ext` and
 * `%sela df target=price rollouts=4 ...` cells (1, 2 and 4) are run.
 */
async function startExampleSearch(
  page: IJupyterLabPageFixture,
  tmpPath: string
): Promise<void> {
  await page.contents.uploadFile(HOUSING, `${tmpPath}/housing.csv`);
  await page.contents.uploadFile(EXAMPLE_NOTEBOOK, `${tmpPath}/house_prices.ipynb`);
  await page.notebook.openByPath(`${tmpPath}/house_prices.ipynb`);
  await page.notebook.activate('house_prices.ipynb');
  expect(await page.notebook.getCellTextInput(4)).toMatch(
    /^%sela df target=price rollouts=4/
  );
  for (const index of [1, 2, 4]) {
    await page.notebook.runCell(index);
  }
}

test('a search grows live in the sidebar; the best pipeline is inserted and runs', async ({
  page,
  tmpPath
}) => {
  test.setTimeout(240_000);
  // Open the notebook first: galata opens files through the file browser tab.
  await startExampleSearch(page, tmpPath);
  const panel = await openSidebar(page);

  // The run appears and its tree grows, without a reload, to 4 simulations.
  await expect(panel.getByRole('option', { name: /^Run / })).toHaveCount(1, {
    timeout: 30_000
  });
  await expect
    .poll(() => simulatedRows(panel).count(), { timeout: 120_000 })
    .toBeGreaterThanOrEqual(4);
  await expect(panel.getByLabel('simulations done of planned')).toHaveText('4/4');
  await expect(panel.getByRole('img', { name: /of 4 simulations/ })).toBeVisible();

  // Once the run has finished, the sidebar's line for its final candidate says
  // what the server recorded: shown, with its label, for a blend, a threshold
  // or a node other than the best on dev; absent otherwise.
  await expect(panel.locator('.jp-Sela-Run .jp-Sela-RunStatus')).toHaveText('finished', {
    timeout: 60_000
  });
  const listed = await (await page.request.get('/sela/api/runs')).json();
  const summary = listed.runs[0];
  const final = summary.final;
  expect(final?.chosen_on).toBe('cv');
  const finalLine = panel.locator('.jp-Sela-RunFinal');
  if (
    final.kind === 'ensemble' ||
    final.threshold !== null ||
    final.members[0].node !== summary.best.node
  ) {
    await expect(finalLine).toContainText(
      final.kind === 'ensemble'
        ? `blend of ${final.members.length} nodes`
        : `node ${final.members[0].node}`
    );
    await expect(finalLine).toHaveAttribute('title', /out-of-fold/);
  } else {
    await expect(finalLine).toHaveCount(0);
  }

  // Clicking the best node shows its code.
  await panel.getByRole('treeitem', { name: /best/ }).click();
  const detail = panel.locator('.jp-Sela-Detail');
  await expect(detail.getByLabel('model code')).toContainText('model');
  await expect(detail.getByLabel('Output tail')).toContainText('dev rmse');

  // Insert pipeline adds new cells below the active cell (cell 0).
  await page.notebook.selectCells(0);
  const before = await page.notebook.getCellCount();
  await detail.getByRole('button', { name: 'Insert pipeline', exact: true }).click();
  await expect.poll(() => page.notebook.getCellCount()).toBeGreaterThan(before + 3);
  const after = await page.notebook.getCellCount();
  const inserted = after - before;
  expect(await page.notebook.getCellTextInput(1)).toContain('# SELA pipeline');
  // The cells that were there are kept, in order, after the inserted ones.
  expect(await page.notebook.getCellTextInput(1 + inserted)).toContain(
    'from pathlib import Path'
  );

  // Running the inserted cells succeeds and prints the dev score.
  let printed = '';
  for (let i = 2; i <= inserted; i++) {
    await page.notebook.runCell(i);
    const output = await page.notebook.getCellTextOutput(i);
    printed += (output ?? []).join('\n');
  }
  expect(printed).toMatch(/dev rmse: \d/);
  expect(printed).not.toMatch(/Traceback|Error/);
});

test('steering and stopping a running search', async ({ page, tmpPath }) => {
  test.setTimeout(240_000);
  const panel = await openSidebar(page);
  await startSearch(
    page,
    tmpPath,
    '%sela df target=price rollouts=60 max_depth=2 name=steered'
  );
  const run = panel.getByRole('option', { name: /^Run / }).filter({ hasText: 'steered' });
  await expect(run).toBeVisible({ timeout: 30_000 });
  await run.click();
  await expect
    .poll(() => simulatedRows(panel).count(), { timeout: 60_000 })
    .toBeGreaterThanOrEqual(3);

  // Prune an eda node the search has not visited yet.
  const target = panel.locator('[role="treeitem"][aria-level="2"][data-status="queued"]').last();
  const prunedId = (await target.getAttribute('data-node-id'))!;
  const pruned = panel.locator(`[data-node-id="${prunedId}"]`);
  await pruned.click();
  await panel.getByRole('button', { name: 'Prune' }).click();
  await expect(pruned).toHaveAttribute('aria-label', /pruned/);

  // Add an insight under the root: it appears as a new child of the root.
  await panel.locator('[role="treeitem"][aria-level="1"]').click();
  await panel.getByRole('button', { name: 'Add insight' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('textbox').fill('Report skew and outliers of each numeric feature');
  await dialog.getByRole('button', { name: /ok/i }).click();
  const yours = panel.locator('[role="treeitem"]', { has: page.locator('.jp-Sela-Badge', { hasText: 'yours' }) });
  await expect(yours).toHaveCount(1, { timeout: 10_000 });
  await expect(yours).toHaveAttribute('aria-level', '2');

  // The search simulates the user's node, and never touches the pruned one.
  await expect
    .poll(async () => yours.getAttribute('data-status'), { timeout: 120_000 })
    .toMatch(/done|failed/);
  await expect(pruned).toHaveAttribute('data-status', 'queued');
  await expect(pruned).not.toHaveAttribute('aria-expanded', /.*/);

  // A screenshot of the sidebar during the run, for the README, with the
  // sidebar widened by dragging its split handle.
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const box = await handle.boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(560, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
  }
  await yours.click();
  await page.screenshot({ path: SCREENSHOT });

  // Stop on the running search stops it.
  await panel.getByRole('button', { name: 'Stop', exact: true }).click();
  await expect(run.locator('.jp-Sela-RunStatus')).toHaveText('stopped', { timeout: 60_000 });
  const stoppedAt = await simulatedRows(panel).count();
  await page.waitForTimeout(3000);
  expect(await simulatedRows(panel).count()).toBe(stoppedAt);
  await expect(panel.getByRole('button', { name: 'Resume' })).toBeEnabled();
});

test('a column that leaks the target is flagged in the profile and the sidebar', async ({
  page,
  tmpPath
}) => {
  test.setTimeout(120_000);
  const panel = await openSidebar(page);
  await startSearch(
    page,
    tmpPath,
    '%sela df target=price rollouts=1 max_depth=1 name=leaky',
    "df['price_k'] = df['price'] / 1000\n"
  );
  const printed = (await page.notebook.getCellTextOutput(2)) ?? [];
  expect(printed.join('\n')).toContain("warning, price_k: tracks 'price' almost exactly");
  const run = panel.getByRole('option', { name: /^Run / }).filter({ hasText: 'leaky' });
  await expect(run).toBeVisible({ timeout: 30_000 });
  await run.click();
  // housing's row numbers track price as well: kept as a feature, with a warning of their own.
  const warnings = panel.locator('.jp-Sela-RunWarnings li');
  await expect(warnings).toHaveCount(2);
  await expect(warnings.nth(0)).toContainText("rownames: a row id that tracks 'price'");
  await expect(warnings.nth(1)).toContainText('price_k: tracks');
  await expect(warnings.nth(1)).toContainText('A leak?');
});

test('a run that could not simulate anything is shown failed, with why', async ({
  page,
  tmpPath
}) => {
  test.setTimeout(120_000);
  const panel = await openSidebar(page);
  await startSearch(page, tmpPath, '%sela df target=price budget=0.1s name=doomed');
  const run = panel.getByRole('option', { name: /^Run / }).filter({ hasText: 'doomed' });
  await expect(run.locator('.jp-Sela-RunStatus')).toHaveText('failed', {
    timeout: 60_000
  });
  await run.click();
  await expect(panel.locator('.jp-Sela-ErrorText')).toContainText(
    'the time budget (0.1 s) ran out before the first simulation finished'
  );
  // The magic's own live view in the notebook says the same.
  await expect(page.locator('.jp-Cell').nth(2).locator('.jp-OutputArea')).toContainText(
    'ran out before the first simulation finished',
    { timeout: 30_000 }
  );
});
