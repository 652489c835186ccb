import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

/**
 * The core sela-jupyter plugin.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'sela-jupyter:plugin',
  description:
    'SELA-style automated ML pipeline search for JupyterLab: the frontend of the sela_jupyter server extension.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    console.log('JupyterLab extension sela-jupyter is activated!');
  }
};

export default plugin;
