/** A small horizontal bar chart as SVG (no chart library for two bars). */
export function renderChart(bars: Array<{ label: string; value: number }>, unit = 'tokens/s'): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const width = 560;
  const row = 34;
  const labelWidth = 110;
  const max = Math.max(...bars.map((b) => b.value), 1e-9);
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(bars.length * row + 8));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', bars.map((b) => `${b.label} ${b.value.toFixed(1)} ${unit}`).join(', '));
  bars.forEach((b, i) => {
    const y = 4 + i * row;
    const w = ((width - labelWidth - 120) * b.value) / max;
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', '0');
    label.setAttribute('y', String(y + 18));
    label.textContent = b.label;
    const rect = document.createElementNS(ns, 'rect');
    rect.setAttribute('x', String(labelWidth));
    rect.setAttribute('y', String(y + 4));
    rect.setAttribute('width', String(Math.max(1, w)));
    rect.setAttribute('height', '20');
    rect.setAttribute('rx', '3');
    rect.setAttribute('fill', i === 0 ? '#2f5bea' : '#98a2b3');
    const value = document.createElementNS(ns, 'text');
    value.setAttribute('x', String(labelWidth + w + 8));
    value.setAttribute('y', String(y + 18));
    value.textContent = `${b.value.toFixed(1)} ${unit}`;
    svg.append(label, rect, value);
  });
  return svg;
}
