/** `kiln daemon`, `kiln doctor` (and `kiln image build`, commands/image.ts) moved to the daemon's own binary, kilnd. */
import type { Command } from 'commander';

export function registerMovedCommands(program: Command): void {
  for (const [name, now] of [
    ['daemon', 'kilnd (or kilnd run)'],
    ['doctor', 'kilnd doctor'],
  ] as const) {
    program
      .command(name, { hidden: true })
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]')
      .action(() => {
        process.stderr.write(`kiln: \`kiln ${name}\` is now \`${now}\` (the daemon's own binary)\n`);
        process.exit(2);
      });
  }
}
