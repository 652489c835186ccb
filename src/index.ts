/**
 * The sela-jupyter frontend: this module only wires the plugins.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Event } from '@jupyterlab/services';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

// eslint-disable-next-line jupyter/prefer-lazy-imports -- activation registers every command at once, for the palette and the sidebar's buttons
import { registerCommands } from './commands';
// eslint-disable-next-line jupyter/prefer-lazy-imports -- activation needs the model at once: ISelaSidebar provides it and the events plugin feeds it from the start
import { SelaModel } from './model';
import { SelaPanel } from './sidebar';
import { EVENT_SCHEMA_ID, ISelaEvent, ISelaSidebar } from './tokens';

/**
 * The left-sidebar panel with runs, tree, chart and node detail.
 */
const sidebarPlugin: JupyterFrontEndPlugin<ISelaSidebar> = {
  id: 'sela-jupyter:sidebar',
  description:
    'The SELA panel in the left sidebar: runs, search tree, node detail.',
  autoStart: true,
  provides: ISelaSidebar,
  optional: [ILayoutRestorer, IEditorLanguageRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    languages: IEditorLanguageRegistry | null,
    translator: ITranslator | null
  ): ISelaSidebar => {
    const model = new SelaModel();
    const panel = new SelaPanel({
      model,
      commands: app.commands,
      languages,
      translator: translator ?? nullTranslator
    });
    app.shell.add(panel, 'left', { rank: 850 });
    restorer?.add(panel, panel.id);
    void app.restored.then(() => model.refreshRuns());
    return { model, id: panel.id };
  }
};

/**
 * Live updates: the run and node events of the server's event bus.
 */
const eventsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'sela-jupyter:events',
  description:
    'Feeds the SELA sidebar with run and node events from /api/events/subscribe.',
  autoStart: true,
  requires: [ISelaSidebar],
  activate: (app: JupyterFrontEnd, sidebar: ISelaSidebar): void => {
    const events = app.serviceManager.events;
    events.stream.connect((_, event: Event.Emission) => {
      if (event.schema_id === EVENT_SCHEMA_ID) {
        sidebar.model.handleEvent(event as unknown as ISelaEvent);
      }
    });
  }
};

/**
 * The `sela:` commands (insert, export, run control, steering), all in the
 * command palette.
 */
const commandsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'sela-jupyter:commands',
  description:
    'SELA commands: insert pipelines, export, stop/resume/delete, steer.',
  autoStart: true,
  requires: [ISelaSidebar],
  optional: [INotebookTracker, ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    sidebar: ISelaSidebar,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ): void => {
    registerCommands({
      app,
      model: sidebar.model,
      notebooks,
      palette,
      sidebarId: sidebar.id,
      translator: translator ?? nullTranslator
    });
  }
};

export default [sidebarPlugin, eventsPlugin, commandsPlugin];
