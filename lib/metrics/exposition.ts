/**
 * The Prometheus text exposition format (version 0.0.4): metric families with
 * `# HELP` and `# TYPE`, one line per sample, label values escaped.
 *
 * @module
 */

/** The content type of {@linkcode renderExposition}'s text. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One sample of a family. */
export interface Sample {
  /** Label name → value. */
  labels?: Record<string, string>;
  value: number;
  /** Appended to the family name (`_bucket`, `_sum`, `_count` of a histogram). */
  suffix?: string;
}

/** One metric family. */
export interface Family {
  /** The metric name, e.g. `mrredis_instance_processes_running`. */
  name: string;
  help: string;
  type: "gauge" | "counter" | "histogram";
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/**
 * Renders `families` as exposition text. Throws a `TypeError` for a name or
 * label name Prometheus would refuse (a bug, never a user's input).
 */
export function renderExposition(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (!NAME.test(f.name)) throw new TypeError(`Metric name "${f.name}" is not valid`);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
    out.push(`# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      for (const [k] of labels) {
        if (!LABEL.test(k) || k.startsWith("__")) {
          throw new TypeError(`Label name "${k}" of metric "${f.name}" is not valid`);
        }
      }
      const text = labels.length === 0
        ? ""
        : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
      out.push(`${f.name}${s.suffix ?? ""}${text} ${formatValue(s.value)}`);
    }
  }
  return out.join("\n") + "\n";
}
