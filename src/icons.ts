import { LabIcon } from '@jupyterlab/ui-components';

import selaSvg from '../style/icons/sela.svg';

/**
 * The SELA sidebar's icon: a search tree with a star on its best leaf.
 */
export const selaIcon = new LabIcon({
  name: 'sela-jupyter:sela',
  svgstr: selaSvg
});
