/**
 * The sidebar's translation bundle, shared with its React components.
 */
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import React, { useContext } from 'react';

/**
 * The gettext domain of sela-jupyter's strings.
 */
export const TRANSLATION_DOMAIN = 'sela_jupyter';

/**
 * The bundle of sela-jupyter's strings from a translator, or the untranslated
 * (English) bundle without one.
 */
export function loadTranslation(
  translator?: ITranslator | null
): TranslationBundle {
  return (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
}

/**
 * The bundle the sidebar's components translate with; English by default.
 */
export const TranslationContext =
  React.createContext<TranslationBundle>(loadTranslation());

/**
 * The translation bundle of the enclosing sidebar.
 */
export function useTranslation(): TranslationBundle {
  return useContext(TranslationContext);
}
