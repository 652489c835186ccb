import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IErrorReply } from './tokens';

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
