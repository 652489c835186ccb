import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { ReactWidget } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import React from 'react';

import { SelaSidebar } from './components/SelaSidebar';
import { selaIcon } from './icons';
import { SelaModel } from './model';

/**
 * The SELA panel of the left sidebar: a ReactWidget over a {@link SelaModel}.
 * It is not a kernel widget, so it survives kernel restarts.
 */
export class SelaPanel extends ReactWidget {
  constructor(options: SelaPanel.IOptions) {
    super();
    this.model = options.model;
    this._commands = options.commands;
    this._languages = options.languages ?? null;
    this.id = 'sela-jupyter-sidebar';
    this.title.icon = selaIcon;
    this.title.caption = 'SELA pipeline search';
    this.title.label = '';
    this.addClass('jp-Sela-Panel');
  }

  /**
   * The panel's model.
   */
  readonly model: SelaModel;

  protected render(): JSX.Element {
    return (
      <SelaSidebar
        model={this.model}
        languages={this._languages}
        execute={(command, args) => {
          void this._commands.execute(command, args ?? {});
        }}
      />
    );
  }

  protected onAfterShow(): void {
    // Catch up on anything missed while hidden (REST is the source of truth).
    void this.model.refreshRuns();
  }

  private _commands: CommandRegistry;
  private _languages: IEditorLanguageRegistry | null;
}

/**
 * The panel's namespace.
 */
export namespace SelaPanel {
  /**
   * Options of the panel.
   */
  export interface IOptions {
    /**
     * The model.
     */
    model: SelaModel;
    /**
     * The application's commands, for the panel's buttons.
     */
    commands: CommandRegistry;
    /**
     * For highlighting code.
     */
    languages?: IEditorLanguageRegistry | null;
  }
}
