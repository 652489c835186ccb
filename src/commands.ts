import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { SelaAPI } from './api';
import { CommandIDs } from './commandIds';
import { insertCellsBelow } from './insert';
import { SelaModel } from './model';
import { IExportCell } from './tokens';

export { CommandIDs };

/**
 * What the commands need.
 */
export interface ICommandContext {
  /**
   * The application.
   */
  app: JupyterFrontEnd;
  /**
   * The sidebar's model: the default run and node.
   */
  model: SelaModel;
  /**
   * The notebooks, for inserting cells.
   */
  notebooks: INotebookTracker | null;
  /**
   * The palette, when there is one.
   */
  palette: ICommandPalette | null;
  /**
   * The sidebar's widget id.
   */
  sidebarId: string;
}

const CATEGORY = 'SELA';

/**
 * Register every `sela:` command and put it in the palette.
 */
export function registerCommands(context: ICommandContext): void {
  const { app, model, notebooks, palette } = context;
  const { commands } = app;

  const runOf = (args: ReadonlyPartialJSONObject): string | null =>
    (args.runId as string | undefined) ?? model.selectedRunId;
  const nodeOf = (args: ReadonlyPartialJSONObject): string | null =>
    (args.nodeId as string | undefined) ?? model.selectedNodeId;
  const hasRun = (args: ReadonlyPartialJSONObject): boolean => !!runOf(args);
  const hasNode = (args: ReadonlyPartialJSONObject): boolean =>
    !!runOf(args) && !!nodeOf(args);

  /** Run an action and report failures in a dialog. */
  const guarded =
    (
      title: string,
      action: (args: ReadonlyPartialJSONObject) => Promise<void>
    ) =>
    async (args: ReadonlyPartialJSONObject): Promise<void> => {
      try {
        await action(args);
      } catch (error) {
        await showErrorMessage(title, error as Error);
      }
    };

  const insert = async (cells: IExportCell[]): Promise<void> => {
    const panel = notebooks?.currentWidget;
    if (!panel) {
      throw new Error(
        'Open a notebook and select the cell to insert below, then try again.'
      );
    }
    app.shell.activateById(panel.id);
    insertCellsBelow(panel.content, cells);
  };

  commands.addCommand(CommandIDs.openSidebar, {
    label: 'Open the SELA Sidebar',
    caption: 'Show the SELA search panel',
    execute: () => app.shell.activateById(context.sidebarId)
  });

  commands.addCommand(CommandIDs.insertBestPipeline, {
    label: 'Insert the Best SELA Pipeline',
    caption:
      "Insert the selected run's best pipeline below the active cell, one cell per stage",
    isEnabled: hasRun,
    execute: guarded('Cannot insert the pipeline', async args => {
      const runId = runOf(args);
      if (!runId) {
        throw new Error('Start a search with %sela first.');
      }
      await insert((await SelaAPI.exportCells(runId, 'best')).cells);
    })
  });

  commands.addCommand(CommandIDs.insertNodePipeline, {
    label: "Insert the Selected Node's Pipeline",
    caption: "Insert the node's whole pipeline below the active cell",
    isEnabled: hasNode,
    execute: guarded('Cannot insert the pipeline', async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (!runId || !nodeId) {
        throw new Error('Select a node in the SELA sidebar first.');
      }
      await insert((await SelaAPI.exportCells(runId, nodeId)).cells);
    })
  });

  commands.addCommand(CommandIDs.insertNodeStage, {
    label: "Insert the Selected Node's Stage",
    caption: "Insert only the node's own stage cell below the active cell",
    isEnabled: hasNode,
    execute: guarded('Cannot insert the stage', async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (!runId || !nodeId) {
        throw new Error('Select a node in the SELA sidebar first.');
      }
      const exported = await SelaAPI.exportCells(runId, nodeId);
      const node =
        model.selectedRunId === runId ? model.tree?.get(exported.node) : null;
      const stage =
        node?.stage ?? (await SelaAPI.getNode(runId, nodeId)).node.stage;
      const cells = exported.cells.filter(cell => cell.role === stage);
      if (cells.length === 0) {
        throw new Error(`Node ${nodeId} has no ${stage} cell to insert.`);
      }
      await insert(cells);
    })
  });

  commands.addCommand(CommandIDs.openNodeNotebook, {
    label: "Open the Selected Node's Notebook",
    caption: 'Open the executed notebook of a simulation',
    isEnabled: hasNode,
    execute: guarded('Cannot open the notebook', async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (!runId || !nodeId) {
        throw new Error('Select a node in the SELA sidebar first.');
      }
      const detail = await SelaAPI.getNode(runId, nodeId);
      if (!detail.notebook_path) {
        throw new Error(
          `The notebook of ${nodeId} is not under the server's root directory: ${
            detail.notebook ?? 'not written yet'
          }`
        );
      }
      await commands.execute('docmanager:open', {
        path: detail.notebook_path
      });
    })
  });

  commands.addCommand(CommandIDs.exportRun, {
    label: 'Export the SELA Pipeline as a Notebook',
    caption:
      "Save the best (or selected) node's pipeline as a new .ipynb next to the current notebook and open it",
    isEnabled: hasRun,
    execute: guarded('Cannot export the pipeline', async args => {
      const runId = runOf(args);
      if (!runId) {
        throw new Error('Start a search with %sela first.');
      }
      const nodeId = (args.nodeId as string | undefined) ?? 'best';
      const content = await SelaAPI.exportNotebook(runId, nodeId);
      const current = notebooks?.currentWidget?.context.path;
      const dir = current ? PathExt.dirname(current) : '';
      const path = PathExt.join(dir, `sela-${runId}-${nodeId}.ipynb`);
      await app.serviceManager.contents.save(path, {
        type: 'notebook',
        format: 'json',
        content
      });
      await commands.execute('docmanager:open', { path });
    })
  });

  commands.addCommand(CommandIDs.stopRun, {
    label: 'Stop the SELA Search',
    caption: 'Stop the selected run (it stays resumable)',
    isEnabled: hasRun,
    execute: guarded('Cannot stop the run', async args => {
      const runId = runOf(args);
      if (runId) {
        const run = await SelaAPI.stopRun(runId);
        model.applyRun(run);
      }
    })
  });

  commands.addCommand(CommandIDs.resumeRun, {
    label: 'Resume the SELA Search',
    caption: 'Continue a stopped or interrupted run',
    isEnabled: hasRun,
    execute: guarded('Cannot resume the run', async args => {
      const runId = runOf(args);
      if (runId) {
        model.applyRun(await SelaAPI.resumeRun(runId));
      }
    })
  });

  commands.addCommand(CommandIDs.deleteRun, {
    label: 'Delete the SELA Run…',
    caption: 'Stop the run if it searches and delete its directory',
    isEnabled: hasRun,
    execute: guarded('Cannot delete the run', async args => {
      const runId = runOf(args);
      if (!runId) {
        return;
      }
      const answer = await showDialog({
        title: 'Delete this run?',
        body: `Run ${runId}, its tree and every simulation's notebook will be deleted. This cannot be undone.`,
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
      });
      if (!answer.button.accept) {
        return;
      }
      await SelaAPI.deleteRun(runId);
      model.removeRun(runId);
    })
  });

  commands.addCommand(CommandIDs.addInsight, {
    label: 'Add an Insight Under the Selected Node…',
    caption:
      'Write an idea for the next stage; the search simulates it as a new child',
    isEnabled: hasNode,
    execute: guarded('Cannot add the insight', async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (!runId || !nodeId) {
        throw new Error('Select a node in the SELA sidebar first.');
      }
      let text = args.text as string | undefined;
      if (text === undefined) {
        const answer = await InputDialog.getText({
          title: `Add an insight under ${nodeId}`,
          label: 'An idea for the next stage, in plain words',
          placeholder: 'e.g. log-transform the lot size'
        });
        if (!answer.button.accept || !answer.value?.trim()) {
          return;
        }
        text = answer.value.trim();
      }
      const node = await SelaAPI.addInsight(runId, nodeId, text);
      await model.applyNodeUpdate(runId, node);
    })
  });

  commands.addCommand(CommandIDs.pruneNode, {
    label: 'Prune the Selected Subtree',
    caption: "Exclude the node's subtree from the search",
    isEnabled: hasNode,
    execute: guarded('Cannot prune the node', async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (runId && nodeId) {
        await model.applyNodeUpdate(
          runId,
          await SelaAPI.pruneNode(runId, nodeId)
        );
      }
    })
  });

  commands.addCommand(CommandIDs.pinNode, {
    label: 'Pin the Selected Node (Expand Next)',
    caption: 'Simulate or expand the node next',
    isEnabled: hasNode,
    execute: guarded('Cannot pin the node', async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (runId && nodeId) {
        await model.applyNodeUpdate(
          runId,
          await SelaAPI.pinNode(runId, nodeId)
        );
      }
    })
  });

  if (palette) {
    for (const command of Object.values(CommandIDs)) {
      palette.addItem({ command, category: CATEGORY });
    }
  }
}
