import { MarkdownCell } from '@jupyterlab/cells';
import { Notebook, NotebookActions } from '@jupyterlab/notebook';

import { IExportCell } from './tokens';

/**
 * Insert cells below the active cell of a notebook as new cells, one per
 * exported cell, in order; no existing cell is replaced. Afterwards the last
 * inserted cell is active.
 *
 * @returns How many cells were inserted.
 */
export function insertCellsBelow(
  notebook: Notebook,
  cells: IExportCell[]
): number {
  let count = 0;
  for (const cell of cells) {
    NotebookActions.insertBelow(notebook);
    const type = cell.kind === 'markdown' ? 'markdown' : 'code';
    if (notebook.activeCell?.model.type !== type) {
      NotebookActions.changeCellType(notebook, type);
    }
    const active = notebook.activeCell;
    if (!active) {
      break;
    }
    active.model.sharedModel.setSource(cell.source);
    if (active instanceof MarkdownCell) {
      active.rendered = true;
    }
    count++;
  }
  return count;
}
