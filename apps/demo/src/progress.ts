/** A progress line on stderr: redrawn in place on a terminal, one line per update otherwise. */
export function progressBar(total: number, label: string, enabled = true): { tick(detail?: string): void; done(): void } {
  let n = 0;
  const tty = Boolean(process.stderr.isTTY);
  if (!enabled) return { tick() {}, done() {} };
  const draw = (detail = '') => {
    const width = 30;
    const filled = Math.round((width * n) / Math.max(1, total));
    const line = `${label} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${n}/${total} ${detail}`;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  };
  return {
    tick(detail) {
      n = Math.min(total, n + 1);
      if (tty || n === total || n % Math.max(1, Math.floor(total / 10)) === 0) draw(detail);
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}
