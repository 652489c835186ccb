import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import React, { useEffect, useRef } from 'react';

/**
 * Props of {@link CodeBlock}.
 */
export interface ICodeBlockProps {
  /**
   * The code.
   */
  code: string;
  /**
   * JupyterLab's language registry, for highlighting; plain text without it.
   */
  languages?: IEditorLanguageRegistry | null;
  /**
   * Accessible name of the block.
   */
  label?: string;
}

/**
 * Read-only Python code, highlighted the way JupyterLab highlights code.
 */
export const CodeBlock = React.memo(function CodeBlock(
  props: ICodeBlockProps
): JSX.Element {
  const { code, languages, label } = props;
  const ref = useRef<HTMLElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) {
      return;
    }
    // React renders the element empty; its text is set here.
    el.textContent = code;
    if (!languages) {
      return;
    }
    const target = document.createElement('span');
    languages
      .highlight(code, languages.findBest('python'), target)
      .then(() => {
        if (ref.current === el) {
          el.textContent = '';
          el.appendChild(target);
        }
      })
      .catch(() => {
        // Keep the plain text.
      });
  }, [code, languages]);
  return (
    <pre className="jp-Sela-Code" aria-label={label}>
      <code ref={ref} />
    </pre>
  );
});
