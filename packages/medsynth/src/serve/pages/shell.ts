/**
 * The web app's page shell: one HTML document around a page's body, with the site bar (home link and
 * breadcrumbs), the self-hosted style sheet and the page's scripts (module scripts from this server only: the
 * Content-Security-Policy forbids inline script, so pages pass data to scripts in `data-` attributes). Every
 * string is escaped through `h` (report/markup.ts); the body is already-built markup.
 */
import { h, type Html } from '../../report/markup.js';
import { ASSET_VERSION } from './assets.js';

export interface Crumb {
  readonly label: string;
  /** Omitted for the current page. */
  readonly href?: string;
}

export interface PageParts {
  /** The page's title (the browser tab shows `<title> — medsynth`). */
  readonly title: string;
  readonly body: Html;
  /** Script URLs served by this server (`/assets/run.js`, `/generate/app.js`), loaded as module scripts. */
  readonly scripts?: readonly string[];
  /** Where the page sits, after the home link (default: the title alone). */
  readonly crumbs?: readonly Crumb[];
}

/** `/assets/<name>?v=<version>`: cached by the browser until medsynth changes. */
export const assetUrl = (name: string): string => `/assets/${name}?v=${ASSET_VERSION}`;

/** A rel path (`/`-separated, relative to the served folder) as a URL path, each segment encoded. */
export function encodeRel(rel: string): string {
  return rel
    .split('/')
    .filter((s) => s !== '')
    .map(encodeURIComponent)
    .join('/');
}

/** The whole HTML document of a page. */
export function page(parts: PageParts): string {
  const crumbs = parts.crumbs ?? [{ label: parts.title }];
  const trail = crumbs.map((c) =>
    c.href !== undefined
      ? h`<span class="sep">/</span><a href="${c.href}">${c.label}</a>`
      : h`<span class="sep">/</span><span>${c.label}</span>`,
  );
  const scripts = (parts.scripts ?? []).map((src) => h`<script type="module" src="${src}"></script>`);
  return h`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${parts.title} — medsynth</title>
<link rel="icon" href="${assetUrl('favicon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${assetUrl('medsynth.css')}">
${scripts}
</head>
<body>
<header class="site-bar"><nav class="crumbs" aria-label="breadcrumbs"><a class="brand" href="/">medsynth</a>${trail}</nav></header>
<main>
${parts.body}
</main>
</body>
</html>
`.value;
}
