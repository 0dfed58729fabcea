// A live time-series chart (uPlot, ~50 KB, canvas). The page appends one sample per refresh; the
// chart keeps its own width in step with its container so it fits a phone as well as a laptop.
// The latest value of each series is also written to data-* attributes (data-last-<series>), so
// a reader (or a test) can see what the canvas shows without reading pixels.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface SeriesSpec {
  key: string;
  label: string;
  color: string;
}

export interface Samples {
  /** Epoch seconds. */
  times: number[];
  /** One array per series, same length as times. */
  values: Record<string, number[]>;
}

export function LiveChart({ id, series, samples, format, height = 180 }: {
  id: string;
  series: SeriesSpec[];
  samples: Samples;
  format: (v: number) => string;
  height?: number;
}): VNode {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  const data = (): uPlot.AlignedData => [samples.times, ...series.map((s) => samples.values[s.key] ?? [])];

  useEffect(() => {
    const el = box.current;
    if (el === null) return undefined;
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        // At least the last minute, so the first samples do not stretch over years.
        x: { time: true, range: (_u, min, max) => [Math.min(min, max - 60), max] },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { stroke: '#667', grid: { stroke: '#eef' } },
        { stroke: '#667', grid: { stroke: '#eef' }, size: 64, values: (_u, ticks) => ticks.map((t) => format(t)) },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null ? '–' : format(v)),
        })),
      ],
    };
    const chart = new uPlot(opts, data(), el);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(el.clientWidth, 200), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [series.map((s) => s.key).join(), height]);

  useEffect(() => {
    plot.current?.setData(data());
  });

  const last: Record<string, string> = {};
  for (const s of series) {
    const values = samples.values[s.key] ?? [];
    const v = values[values.length - 1];
    last[`data-last-${s.key}`] = v === undefined ? '' : String(v);
  }
  return html`<div class="chart" id=${id} data-samples=${samples.times.length} ...${last}>
    <div ref=${box} class="chart-canvas"></div>
  </div>`;
}
