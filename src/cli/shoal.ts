import { Command } from 'commander';

// STUB: `shoal machine …` is added by the lab.
const program = new Command('shoal').description('shoal: tools around the shoald daemon');
await program.parseAsync();
