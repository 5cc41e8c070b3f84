/**
 * HTML markup with escaping by default: the `h` template tag escapes every interpolated string or number
 * and keeps interpolated `Html` (already built markup) as it is; arrays are joined. Every value that comes
 * from a study (class names, paths, condition names, verdict texts) goes through it, so none can inject tags.
 */

/** Markup that is already safe (built by `h`, or trusted like a rendered chart). */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** What may be interpolated: text (escaped), markup (kept), lists of either; null/undefined/false render nothing. */
export type Markup = Html | string | number | null | undefined | false | readonly Markup[];

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Trusted markup, kept as it is. */
export function raw(markup: string): Html {
  return new Html(markup);
}

function render(value: Markup): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return (value as readonly Markup[]).map(render).join('');
  return escapeHtml(String(value as string | number));
}

/**
 * Template tag: literal parts are markup, interpolations are escaped unless they are `Html`. (Named `h`, not
 * `html`, so that Prettier leaves the templates' whitespace alone.)
 */
export function h(strings: TemplateStringsArray, ...values: readonly Markup[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}
