import { expect, test } from '@jupyterlab/galata';

/**
 * Load JupyterLab only inside the test, after the console listener is
 * attached, so that no message from page load is missed.
 */
test.use({ autoGoto: false });

test('activates the sela-jupyter extension on page load', async ({ page }) => {
  const logs: string[] = [];
  page.on('console', message => {
    logs.push(message.text());
  });

  await page.goto();

  expect(
    logs.filter(s => s === 'JupyterLab extension sela-jupyter is activated!')
  ).toHaveLength(1);
});
