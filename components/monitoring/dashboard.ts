/**
 * The GPU dashboard, as Grafana JSON built in code: utilization, memory, power and temperature,
 * per pool (from the recording rules) and per GPU. Grafana's dashboard sidecar loads it from a
 * ConfigMap labelled `grafana_dashboard: "1"`.
 */
import { withPool } from "./rules";

interface Panel {
  title: string;
  expr: string;
  legend: string;
  unit: string;
  max?: number;
}

const POOL_FILTER = `{pool=~"$pool"}`;
const POOL_MATCH = `=~"$pool"`;

export function gpuDashboard(): Record<string, unknown> {
  const panels: Panel[] = [
    {
      title: "GPU utilization by pool",
      expr: `platform:gpu_utilization:avg_by_pool${POOL_FILTER}`,
      legend: "{{pool}}",
      unit: "percent",
      max: 100,
    },
    {
      title: "GPU memory used by pool",
      expr: `sum by (pool) (${withPool("DCGM_FI_DEV_FB_USED", POOL_MATCH)}) * 1024 * 1024`,
      legend: "{{pool}}",
      unit: "bytes",
    },
    {
      title: "GPU utilization per GPU",
      expr: `${withPool("DCGM_FI_DEV_GPU_UTIL", POOL_MATCH)}`,
      legend: "{{pool}} {{Hostname}} gpu{{gpu}}",
      unit: "percent",
      max: 100,
    },
    {
      title: "GPU memory used per GPU",
      expr: `100 * platform:gpu_memory_used_ratio:by_gpu${POOL_FILTER}`,
      legend: "{{pool}} {{Hostname}} gpu{{gpu}}",
      unit: "percent",
      max: 100,
    },
    {
      title: "Power draw",
      expr: `${withPool("DCGM_FI_DEV_POWER_USAGE", POOL_MATCH)}`,
      legend: "{{pool}} {{Hostname}} gpu{{gpu}}",
      unit: "watt",
    },
    {
      title: "Temperature",
      expr: `${withPool("DCGM_FI_DEV_GPU_TEMP", POOL_MATCH)}`,
      legend: "{{pool}} {{Hostname}} gpu{{gpu}}",
      unit: "celsius",
    },
  ];
  return {
    title: "GPU pools",
    uid: "platform-gpu-pools",
    tags: ["gpu", "dcgm", "platform"],
    timezone: "browser",
    refresh: "30s",
    schemaVersion: 39,
    time: { from: "now-6h", to: "now" },
    templating: {
      list: [
        {
          name: "pool",
          label: "GPU pool",
          type: "query",
          datasource: { type: "prometheus", uid: "prometheus" },
          query: "label_values(platform:gpu_utilization:avg_by_pool, pool)",
          includeAll: true,
          multi: true,
          current: { text: "All", value: "$__all" },
          refresh: 2,
        },
      ],
    },
    panels: panels.map((p, i) => ({
      id: i + 1,
      type: "timeseries",
      title: p.title,
      gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
      datasource: { type: "prometheus", uid: "prometheus" },
      fieldConfig: {
        defaults: { unit: p.unit, min: 0, ...(p.max !== undefined ? { max: p.max } : {}) },
        overrides: [],
      },
      targets: [{ refId: "A", expr: p.expr, legendFormat: p.legend }],
    })),
  };
}
