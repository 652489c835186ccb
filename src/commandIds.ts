/**
 * The ids of the sela-jupyter commands (all in the command palette).
 *
 * Commands that act on a run or a node take optional `runId` / `nodeId`
 * arguments and default to the sidebar's selection.
 */
export namespace CommandIDs {
  export const openSidebar = 'sela:open-sidebar';
  export const insertBestPipeline = 'sela:insert-best-pipeline';
  export const insertNodePipeline = 'sela:insert-node-pipeline';
  export const insertNodeStage = 'sela:insert-node-stage';
  export const openNodeNotebook = 'sela:open-node-notebook';
  export const exportRun = 'sela:export-run';
  export const stopRun = 'sela:stop-run';
  export const resumeRun = 'sela:resume-run';
  export const deleteRun = 'sela:delete-run';
  export const addInsight = 'sela:add-insight';
  export const pruneNode = 'sela:prune-node';
  export const pinNode = 'sela:pin-node';
}
