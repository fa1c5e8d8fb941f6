// HTML with every interpolated value escaped unless it is already HTML: `html` templates nest,
// strings and numbers are escaped, arrays are joined, null and undefined vanish.

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escape(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:1.5rem auto;padding:0 1rem;color:#1b1f24}
header{display:flex;gap:1rem;align-items:baseline;border-bottom:1px solid #ddd;margin-bottom:1rem}
header a{color:inherit}
table{width:100%;border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #e4e4e4;padding:.3rem .4rem;text-align:left;vertical-align:top}
td.amount{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
form.inline{display:inline}
label{display:block;margin:.4rem 0}
input,select,button{font:inherit}
input[type=text]{width:100%;box-sizing:border-box}
.error{background:#fdecea;border:1px solid #f5c2c0;padding:.5rem .75rem}
.muted{color:#666}
code{font-size:.9em;overflow-wrap:anywhere}
@media (max-width:30rem){table{font-size:.9em}}
`;

export interface PageOptions {
  /** Reload the page after this many seconds (while waiting for something to happen). */
  refreshSeconds?: number;
  /** `data-*` attributes of <body>, for the end-to-end test and for anyone scripting the app. */
  data?: Record<string, string>;
}

export function page(title: string, body: Html, options: PageOptions = {}): string {
  const refresh = options.refreshSeconds
    ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}">`
    : '';
  const data = Object.entries(options.data ?? {}).map(([k, v]) => html` data-${k}="${v}"`);
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
${refresh}<title>${title} · Budgetly</title><style>${new Html(STYLE)}</style></head>
<body${data}><header><b><a href="/">Budgetly</a></b><span class="muted">a sample Kontor tenant</span>
<a href="/webhooks">Webhooks</a></header>
<h1>${title}</h1>
${body}
</body></html>`.text;
}
