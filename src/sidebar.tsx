import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import React from 'react';

import { selaIcon } from './icons';
import type { SelaModel } from './model';
import { loadTranslation, TranslationContext } from './translation';

/**
 * The sidebar's components, loaded when the panel first renders rather than
 * while the application starts.
 */
const SelaSidebar = React.lazy(async () => {
  const { SelaSidebar } = await import('./components/SelaSidebar');
  return { default: SelaSidebar };
});

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
    this._trans = loadTranslation(options.translator);
    this.id = 'sela-jupyter-sidebar';
    this.title.icon = selaIcon;
    this.title.caption = this._trans.__('SELA pipeline search');
    this.title.label = '';
    this.addClass('jp-Sela-Panel');
  }

  /**
   * The panel's model.
   */
  readonly model: SelaModel;

  protected render(): JSX.Element {
    const trans = this._trans;
    return (
      <TranslationContext.Provider value={trans}>
        <React.Suspense
          fallback={
            <div className="jp-Sela-Loading" role="status">
              {trans.__('Loading…')}
            </div>
          }
        >
          <SelaSidebar
            model={this.model}
            languages={this._languages}
            execute={(command, args) => {
              void this._commands.execute(command, args ?? {});
            }}
          />
        </React.Suspense>
      </TranslationContext.Provider>
    );
  }

  protected onAfterShow(): void {
    // Catch up on anything missed while hidden (REST is the source of truth).
    void this.model.refreshRuns();
  }

  private _commands: CommandRegistry;
  private _languages: IEditorLanguageRegistry | null;
  private _trans: TranslationBundle;
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
    /**
     * The application's translator; English without one.
     */
    translator?: ITranslator | null;
  }
}
