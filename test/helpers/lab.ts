// One lab per describe(): brought up in before(), torn down in after(), also when up() fails half-way.
import { after, before } from 'node:test';
import { Lab, type LabOptions } from '../../src/lab/lab.js';

/** Registers the hooks in the calling describe(); `assign` receives the lab once it is created. */
export function useLab(opts: LabOptions, assign: (lab: Lab) => void): void {
  let lab: Lab | undefined;
  before(async () => {
    lab = new Lab(opts);
    assign(lab);
    try {
      await lab.up();
    } catch (e) {
      await lab.down();
      throw e;
    }
  });
  after(async () => {
    await lab?.down();
  });
}
