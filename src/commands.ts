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
import { ITranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import {
  ReadonlyJSONObject,
  ReadonlyPartialJSONObject
} from '@lumino/coreutils';

import { SelaAPI } from './api';
import { CommandIDs } from './commandIds';
import { insertCellsBelow } from './insert';
import type { IExportCell, ISelaModel, ITreeNode } from './tokens';

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
  model: ISelaModel;
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
  /**
   * The application's translator, for labels, captions and messages.
   */
  translator: ITranslator;
}

/**
 * Register every `sela:` command and put it in the palette.
 */
export function registerCommands(context: ICommandContext): void {
  const { app, model, notebooks, palette, translator } = context;
  const { commands } = app;
  const trans = translator.load('sela_jupyter');

  // The arguments each command takes (`describedBy`); all are optional.
  const runIdSchema = {
    type: 'string',
    description: trans.__("The run's id; the sidebar's selected run by default")
  };
  const nodeIdSchema = {
    type: 'string',
    description: trans.__(
      "The node's id in the run; the sidebar's selected node by default"
    )
  };
  const describeArgs = (
    properties: ReadonlyJSONObject
  ): Partial<CommandRegistry.Description> => ({
    args: { type: 'object', properties }
  });
  const noArgs = describeArgs({});
  const runArgs = describeArgs({ runId: runIdSchema });
  const nodeArgs = describeArgs({ runId: runIdSchema, nodeId: nodeIdSchema });

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
        trans.__(
          'Open a notebook and select the cell to insert below, then try again.'
        )
      );
    }
    app.shell.activateById(panel.id);
    insertCellsBelow(panel.content, cells);
  };

  const noRunError = (): Error =>
    new Error(trans.__('Start a search with %sela first.'));
  const noNodeError = (): Error =>
    new Error(trans.__('Select a node in the SELA sidebar first.'));

  commands.addCommand(CommandIDs.openSidebar, {
    label: trans.__('Open the SELA Sidebar'),
    caption: trans.__('Show the SELA search panel'),
    describedBy: noArgs,
    execute: () => app.shell.activateById(context.sidebarId)
  });

  commands.addCommand(CommandIDs.insertBestPipeline, {
    label: trans.__('Insert the Best SELA Pipeline'),
    caption: trans.__(
      "Insert the selected run's final pipeline (a blend of its best nodes when dev chose one) below the active cell"
    ),
    describedBy: runArgs,
    isEnabled: hasRun,
    execute: guarded(trans.__('Cannot insert the pipeline'), async args => {
      const runId = runOf(args);
      if (!runId) {
        throw noRunError();
      }
      await insert((await SelaAPI.exportCells(runId, 'final')).cells);
    })
  });

  commands.addCommand(CommandIDs.insertNodePipeline, {
    label: trans.__("Insert the Selected Node's Pipeline"),
    caption: trans.__("Insert the node's whole pipeline below the active cell"),
    describedBy: nodeArgs,
    isEnabled: hasNode,
    execute: guarded(trans.__('Cannot insert the pipeline'), async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (!runId || !nodeId) {
        throw noNodeError();
      }
      await insert((await SelaAPI.exportCells(runId, nodeId)).cells);
    })
  });

  commands.addCommand(CommandIDs.insertNodeStage, {
    label: trans.__("Insert the Selected Node's Stage"),
    caption: trans.__(
      "Insert only the node's own stage cell below the active cell"
    ),
    describedBy: nodeArgs,
    isEnabled: hasNode,
    execute: guarded(trans.__('Cannot insert the stage'), async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (!runId || !nodeId) {
        throw noNodeError();
      }
      const exported = await SelaAPI.exportCells(runId, nodeId);
      const node =
        model.selectedRunId === runId ? model.tree?.get(exported.node) : null;
      const stage =
        node?.stage ?? (await SelaAPI.getNode(runId, nodeId)).node.stage;
      const cells = exported.cells.filter(cell => cell.role === stage);
      if (cells.length === 0) {
        throw new Error(
          trans.__('Node %1 has no %2 cell to insert.', nodeId, stage)
        );
      }
      await insert(cells);
    })
  });

  commands.addCommand(CommandIDs.openNodeNotebook, {
    label: trans.__("Open the Selected Node's Notebook"),
    caption: trans.__('Open the executed notebook of a simulation'),
    describedBy: nodeArgs,
    isEnabled: hasNode,
    execute: guarded(trans.__('Cannot open the notebook'), async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (!runId || !nodeId) {
        throw noNodeError();
      }
      const detail = await SelaAPI.getNode(runId, nodeId);
      if (!detail.notebook_path) {
        throw new Error(
          detail.notebook
            ? trans.__(
                "The notebook of %1 is not under the server's root directory: %2",
                nodeId,
                detail.notebook
              )
            : trans.__('The notebook of %1 is not written yet.', nodeId)
        );
      }
      await commands.execute('docmanager:open', {
        path: detail.notebook_path
      });
    })
  });

  commands.addCommand(CommandIDs.exportRun, {
    label: trans.__('Export the SELA Pipeline as a Notebook'),
    caption: trans.__(
      "Save the final (or selected node's) pipeline as a new .ipynb next to the current notebook and open it"
    ),
    describedBy: describeArgs({
      runId: runIdSchema,
      nodeId: {
        type: 'string',
        description: trans.__(
          "The node's id in the run; the run's final pipeline by default"
        )
      }
    }),
    isEnabled: hasRun,
    execute: guarded(trans.__('Cannot export the pipeline'), async args => {
      const runId = runOf(args);
      if (!runId) {
        throw noRunError();
      }
      const nodeId = (args.nodeId as string | undefined) ?? 'final';
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
    label: trans.__('Stop the SELA Search'),
    caption: trans.__('Stop the selected run (it stays resumable)'),
    describedBy: runArgs,
    isEnabled: hasRun,
    execute: guarded(trans.__('Cannot stop the run'), async args => {
      const runId = runOf(args);
      if (runId) {
        const run = await SelaAPI.stopRun(runId);
        model.applyRun(run);
      }
    })
  });

  commands.addCommand(CommandIDs.resumeRun, {
    label: trans.__('Resume the SELA Search'),
    caption: trans.__('Continue a stopped or interrupted run'),
    describedBy: runArgs,
    isEnabled: hasRun,
    execute: guarded(trans.__('Cannot resume the run'), async args => {
      const runId = runOf(args);
      if (runId) {
        model.applyRun(await SelaAPI.resumeRun(runId));
      }
    })
  });

  commands.addCommand(CommandIDs.deleteRun, {
    label: trans.__('Delete the SELA Run…'),
    caption: trans.__('Stop the run if it searches and delete its directory'),
    describedBy: runArgs,
    isEnabled: hasRun,
    execute: guarded(trans.__('Cannot delete the run'), async args => {
      const runId = runOf(args);
      if (!runId) {
        return;
      }
      const answer = await showDialog({
        title: trans.__('Delete this run?'),
        body: trans.__(
          "Run %1, its tree and every simulation's notebook will be deleted. This cannot be undone.",
          runId
        ),
        buttons: [
          Dialog.cancelButton(),
          Dialog.warnButton({ label: trans.__('Delete') })
        ]
      });
      if (!answer.button.accept) {
        return;
      }
      await SelaAPI.deleteRun(runId);
      model.removeRun(runId);
    })
  });

  commands.addCommand(CommandIDs.addInsight, {
    label: trans.__('Add an Insight Under the Selected Node…'),
    caption: trans.__(
      'Write an idea for the next stage; the search simulates it as a new child'
    ),
    describedBy: describeArgs({
      runId: runIdSchema,
      nodeId: nodeIdSchema,
      text: {
        type: 'string',
        description: trans.__('The insight; asked for in a dialog without it')
      }
    }),
    isEnabled: hasNode,
    execute: guarded(trans.__('Cannot add the insight'), async args => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (!runId || !nodeId) {
        throw noNodeError();
      }
      let text = args.text as string | undefined;
      if (text === undefined) {
        const answer = await InputDialog.getText({
          title: trans.__('Add an insight under %1', nodeId),
          label: trans.__('An idea for the next stage, in plain words'),
          placeholder: trans.__('e.g. log-transform the lot size')
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

  /** A steering action on the selected node whose reply is the updated node. */
  const steerNode =
    (steer: (runId: string, nodeId: string) => Promise<ITreeNode>) =>
    async (args: ReadonlyPartialJSONObject): Promise<void> => {
      const runId = runOf(args);
      const nodeId = nodeOf(args);
      if (runId && nodeId) {
        await model.applyNodeUpdate(runId, await steer(runId, nodeId));
      }
    };

  commands.addCommand(CommandIDs.pruneNode, {
    label: trans.__('Prune the Selected Subtree'),
    caption: trans.__("Exclude the node's subtree from the search"),
    describedBy: nodeArgs,
    isEnabled: hasNode,
    execute: guarded(
      trans.__('Cannot prune the node'),
      steerNode((runId, nodeId) => SelaAPI.pruneNode(runId, nodeId))
    )
  });

  commands.addCommand(CommandIDs.pinNode, {
    label: trans.__('Pin the Selected Node (Expand Next)'),
    caption: trans.__('Simulate or expand the node next'),
    describedBy: nodeArgs,
    isEnabled: hasNode,
    execute: guarded(
      trans.__('Cannot pin the node'),
      steerNode((runId, nodeId) => SelaAPI.pinNode(runId, nodeId))
    )
  });

  if (palette) {
    for (const command of Object.values(CommandIDs)) {
      palette.addItem({ command, category: trans.__('SELA') });
    }
  }
}
