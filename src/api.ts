import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IErrorReply,
  IExportedCells,
  INodeDetail,
  IRun,
  IRunSummary,
  ITreeNode
} from './tokens';

/**
 * The URL path, under the server's base URL, of the sela-jupyter REST API.
 */
export const API_NAMESPACE = 'sela/api';

/**
 * Call the sela-jupyter REST API and return its JSON reply.
 *
 * @param endPoint - Path under `<base_url>/sela/api/`, e.g. `runs` or `runs/<id>`.
 * @param init - Fetch options (method, body, headers); defaults to a GET.
 * @param settings - Server connection settings; defaults to the page's own server.
 * @returns The reply body parsed as JSON, or `undefined` for an empty body.
 * @throws {ServerConnection.NetworkError} When the server cannot be reached.
 * @throws {ServerConnection.ResponseError} When the server answers with an
 *   error status; its message is the server's `message`.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: unknown = undefined;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }

  if (!response.ok) {
    throw new ServerConnection.ResponseError(response, errorMessage(data));
  }
  return data as T;
}

/**
 * The user-facing message of an error reply, whatever its shape.
 */
function errorMessage(data: unknown): string | undefined {
  if (typeof data === 'string') {
    return data;
  }
  const reply = data as Partial<IErrorReply> | undefined;
  return reply?.message ?? reply?.reason ?? undefined;
}

const json = (body: unknown): RequestInit => ({
  method: 'POST',
  body: JSON.stringify(body)
});

const q = encodeURIComponent;

/**
 * Typed calls of the sela-jupyter REST API.
 */
export const SelaAPI = {
  /**
   * Run summaries, newest first.
   */
  async listRuns(): Promise<IRunSummary[]> {
    return (await requestAPI<{ runs: IRunSummary[] }>('runs')).runs;
  },
  /**
   * A run with its whole tree.
   */
  getRun(runId: string): Promise<IRun> {
    return requestAPI<IRun>(`runs/${q(runId)}`);
  },
  /**
   * A node's detail.
   */
  getNode(runId: string, nodeId: string): Promise<INodeDetail> {
    return requestAPI<INodeDetail>(`runs/${q(runId)}/nodes/${q(nodeId)}`);
  },
  /**
   * A pipeline as cells: the run's final answer by default (`final`: its blend
   * of the best nodes, or the best node), `best`, or a node id.
   */
  exportCells(runId: string, nodeId = 'final'): Promise<IExportedCells> {
    return requestAPI<IExportedCells>(
      `runs/${q(runId)}/export?format=cells&node=${q(nodeId)}`
    );
  },
  /**
   * A node's pipeline as notebook JSON text.
   */
  async exportNotebook(runId: string, nodeId = 'final'): Promise<unknown> {
    return requestAPI<unknown>(
      `runs/${q(runId)}/export?format=ipynb&node=${q(nodeId)}`
    );
  },
  /**
   * Stop a run (it stays resumable).
   */
  stopRun(runId: string): Promise<IRun> {
    return requestAPI<IRun>(`runs/${q(runId)}/stop`, { method: 'POST' });
  },
  /**
   * Resume a stopped or interrupted run.
   */
  resumeRun(runId: string): Promise<IRun> {
    return requestAPI<IRun>(`runs/${q(runId)}/resume`, { method: 'POST' });
  },
  /**
   * Stop a run if it searches and delete it.
   */
  deleteRun(runId: string): Promise<void> {
    return requestAPI<void>(`runs/${q(runId)}`, { method: 'DELETE' });
  },
  /**
   * A user-written insight for the next stage below `nodeId`; the new child.
   */
  async addInsight(
    runId: string,
    nodeId: string,
    text: string
  ): Promise<ITreeNode> {
    const reply = await requestAPI<{ node: ITreeNode }>(
      `runs/${q(runId)}/nodes/${q(nodeId)}/insights`,
      json({ text })
    );
    return reply.node;
  },
  /**
   * Exclude a node's subtree from the search.
   */
  async pruneNode(runId: string, nodeId: string): Promise<ITreeNode> {
    const reply = await requestAPI<{ node: ITreeNode }>(
      `runs/${q(runId)}/nodes/${q(nodeId)}/prune`,
      { method: 'POST' }
    );
    return reply.node;
  },
  /**
   * Simulate or expand a node next.
   */
  async pinNode(runId: string, nodeId: string): Promise<ITreeNode> {
    const reply = await requestAPI<{ node: ITreeNode }>(
      `runs/${q(runId)}/nodes/${q(nodeId)}/pin`,
      { method: 'POST' }
    );
    return reply.node;
  }
};
