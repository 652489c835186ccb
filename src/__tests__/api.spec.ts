import { ServerConnection } from '@jupyterlab/services';
import * as http from 'http';
import { AddressInfo } from 'net';

import { requestAPI } from '../api';

/**
 * What the test server saw of one request.
 */
interface IRecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

/**
 * A real HTTP server that answers each path with a fixed status and body.
 */
class FixedReplyServer {
  readonly requests: IRecordedRequest[] = [];

  constructor(
    private readonly replies: Record<string, { status: number; body: string }>
  ) {}

  async start(): Promise<string> {
    this._server = http.createServer((req, res) => {
      let body = '';
      req.on('data', chunk => (body += chunk));
      req.on('end', () => {
        // JupyterLab may add a cache-busting query string: route on the path.
        const path = new URL(req.url ?? '/', 'http://localhost').pathname;
        this.requests.push({
          method: req.method ?? '',
          path,
          authorization: req.headers.authorization,
          body
        });
        const reply = this.replies[path] ?? {
          status: 404,
          body: ''
        };
        res.writeHead(reply.status, { 'Content-Type': 'application/json' });
        res.end(reply.body);
      });
    });
    await new Promise<void>(resolve =>
      this._server!.listen(0, '127.0.0.1', resolve)
    );
    const { port } = this._server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/lab-base/`;
  }

  async stop(): Promise<void> {
    await new Promise(resolve => this._server?.close(resolve));
  }

  private _server: http.Server | null = null;
}

describe('requestAPI', () => {
  const server = new FixedReplyServer({
    '/lab-base/sela/api/runs': {
      status: 200,
      body: JSON.stringify([{ id: 'run-1' }])
    },
    '/lab-base/sela/api/runs/run-1/stop': { status: 204, body: '' },
    '/lab-base/sela/api/runs/missing': {
      status: 404,
      body: JSON.stringify({
        message: 'No run "missing": list runs with GET sela/api/runs.',
        reason: 'Not Found'
      })
    }
  });
  let settings: ServerConnection.ISettings;

  beforeAll(async () => {
    const baseUrl = await server.start();
    settings = ServerConnection.makeSettings({ baseUrl, token: 'secret' });
  });

  afterAll(async () => {
    await server.stop();
  });

  it('parses the JSON reply of an endpoint under <base_url>/sela/api/', async () => {
    const runs = await requestAPI<{ id: string }[]>('runs', {}, settings);

    expect(runs).toEqual([{ id: 'run-1' }]);
    expect(server.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: '/lab-base/sela/api/runs',
      authorization: 'token secret'
    });
  });

  it('sends the method and body it is given', async () => {
    const reply = await requestAPI<undefined>(
      'runs/run-1/stop',
      { method: 'POST', body: JSON.stringify({ reason: 'user' }) },
      settings
    );

    expect(reply).toBeUndefined();
    expect(server.requests.at(-1)).toMatchObject({
      method: 'POST',
      body: '{"reason":"user"}'
    });
  });

  it("rejects an error status with the server's message", async () => {
    const request = requestAPI('runs/missing', {}, settings);

    await expect(request).rejects.toBeInstanceOf(
      ServerConnection.ResponseError
    );
    await expect(request).rejects.toMatchObject({
      message: 'No run "missing": list runs with GET sela/api/runs.',
      response: { status: 404 }
    });
  });

  it('rejects with a NetworkError when no server answers', async () => {
    const closed = new FixedReplyServer({});
    const baseUrl = await closed.start();
    await closed.stop();

    await expect(
      requestAPI('runs', {}, ServerConnection.makeSettings({ baseUrl }))
    ).rejects.toBeInstanceOf(ServerConnection.NetworkError);
  });
});
