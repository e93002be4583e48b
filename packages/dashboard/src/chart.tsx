/**
 * A time-series chart (uPlot) of the last 15 minutes. The figure carries what it draws as
 * data attributes (data-points, data-last, data-max, data-recent: the last 30 values) so that a test — or a screen reader's
 * summary — can read the values without parsing the canvas.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface Series {
  label: string;
  color: string;
  values: (number | null)[];
}

export function Chart({ id, title, times, series, unit }: { id: string; title: string; times: number[]; series: Series[]; unit: (v: number) => string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = [times.map((t) => t / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData;
  useEffect(() => {
    if (!box.current) return;
    const opts: uPlot.Options = {
      width: Math.max(280, box.current.clientWidth || 400),
      height: 160,
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, 1)] } },
      axes: [{ stroke: '#333' }, { stroke: '#333', values: (_u, vals) => vals.map((v) => unit(v)), size: 70 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, value: (_u: uPlot, v: number | null) => (v === null ? '–' : unit(v)) }))],
    };
    plot.current = new uPlot(opts, data, box.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [series.length]);
  useEffect(() => {
    plot.current?.setData(data);
  });
  const first = series[0]?.values ?? [];
  const nums = first.filter((v): v is number => v !== null);
  const last = nums.at(-1);
  return (
    <figure class="chart" id={id} data-points={String(nums.length)} data-last={last === undefined ? '' : String(last)} data-max={nums.length ? String(Math.max(...nums)) : ''} data-recent={nums.slice(-30).map((v) => v.toFixed(1)).join(',')}>
      <figcaption>
        {title}
        <span class="sr-only">{last === undefined ? ': no samples yet' : `: latest ${unit(last)}`}</span>
      </figcaption>
      <div ref={box} role="img" aria-label={`${title} over the last 15 minutes`} />
    </figure>
  );
}
