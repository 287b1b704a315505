/**
 * A one-line progress bar on stderr (redrawn in place on a terminal, one line per step otherwise,
 * so CI logs stay readable). stdout stays free for `--json`.
 */
export class Progress {
  readonly #total: number;
  readonly #tty: boolean;
  readonly #write: (s: string) => void;
  #done = 0;

  constructor(total: number, write: (s: string) => void = (s) => process.stderr.write(s)) {
    this.#total = Math.max(1, total);
    this.#tty = Boolean(process.stderr.isTTY);
    this.#write = write;
  }

  step(label: string): void {
    this.#done = Math.min(this.#total, this.#done + 1);
    const width = 24;
    const filled = Math.round((width * this.#done) / this.#total);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.#done}/${this.#total} ${label}`;
    this.#write(this.#tty ? `\r\x1b[2K${bar}` : `${bar}\n`);
  }

  finish(): void {
    if (this.#tty) this.#write('\n');
  }
}
