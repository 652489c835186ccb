/**
 * Shared types of the sela-jupyter frontend.
 *
 * They mirror the JSON the `sela_jupyter` server extension sends, so the
 * sidebar, the REST client and the commands agree on one shape.
 */

/**
 * The pipeline stages, in the order they appear as levels of the search tree.
 */
export const STAGES = [
  'eda',
  'preprocess',
  'features',
  'model',
  'ensemble'
] as const;

/**
 * One pipeline stage: a level of the search tree.
 */
export type Stage = (typeof STAGES)[number];

/**
 * The JSON body of an error reply from a jupyter_server `APIHandler`.
 */
export interface IErrorReply {
  /**
   * What went wrong and what to do about it, written for the user.
   */
  message: string;

  /**
   * The short HTTP reason, when the handler gave one.
   */
  reason?: string | null;

  /**
   * The server-side traceback, present only when the server runs in debug mode.
   */
  traceback?: string;
}
