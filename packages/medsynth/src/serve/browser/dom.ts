/**
 * The few DOM types the live-generation page uses. The project compiles without the DOM library (its code runs
 * in Node, and lib.dom's globals would change Node's typings for every file), so the page script declares what
 * it touches here and reaches the browser's globals through `globalThis`.
 */

export interface DomEvent {
  preventDefault(): void;
}

export interface DomElement {
  readonly dataset: Record<string, string | undefined>;
  textContent: string | null;
  hidden: boolean;
  title: string;
  className: string;
  readonly classList: { add(...names: string[]): void; remove(...names: string[]): void };
  append(...nodes: (DomElement | string)[]): void;
  replaceChildren(...nodes: (DomElement | string)[]): void;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  addEventListener(type: string, listener: (event: DomEvent) => void): void;
  querySelector(selector: string): DomElement | null;
}

export interface DomInput extends DomElement {
  value: string;
  disabled: boolean;
  min: string;
  max: string;
}

export interface DomAnchor extends DomElement {
  href: string;
}

export interface DomImage extends DomElement {
  src: string;
  alt: string;
  width: number;
  height: number;
}

export interface DomImageData {
  readonly data: Uint8ClampedArray;
}

export interface Canvas2D {
  createImageData(width: number, height: number): DomImageData;
  putImageData(image: DomImageData, x: number, y: number): void;
}

export interface DomCanvas extends DomElement {
  width: number;
  height: number;
  getContext(kind: '2d'): Canvas2D | null;
  getContext(kind: 'webgl2' | 'webgl'): object | null;
}

export interface DomDocument {
  getElementById(id: string): DomElement | null;
  createElement(tag: 'canvas'): DomCanvas;
  createElement(tag: 'a'): DomAnchor;
  createElement(tag: 'img'): DomImage;
  createElement(tag: string): DomElement;
}

interface BrowserGlobals {
  readonly document: DomDocument;
  readonly location: { readonly search: string };
}

const g = globalThis as unknown as BrowserGlobals;

export const documentRef = (): DomDocument => g.document;
export const searchParams = (): URLSearchParams => new URLSearchParams(g.location.search);

/** The element with `id` (an Error naming it when the page lacks it). */
export function byId<T extends DomElement = DomElement>(id: string): T {
  const el = g.document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** A new element with a class and text. */
export function el(tag: string, className = '', text?: string): DomElement {
  const e = g.document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A canvas showing one 8-bit image (grey or RGB, `[side, side, channels]` row-major) at its own size. */
export function imageCanvas(
  pixels: ArrayLike<number>,
  side: number,
  channels: number,
  label: string,
): DomCanvas {
  const canvas = g.document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  canvas.className = 'px';
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  canvas.title = label;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser cannot draw on a canvas');
  const img = ctx.createImageData(side, side);
  const n = side * side;
  for (let i = 0; i < n; i++) {
    const o = i * 4;
    if (channels === 1) {
      const v = pixels[i]!;
      img.data[o] = v;
      img.data[o + 1] = v;
      img.data[o + 2] = v;
    } else {
      img.data[o] = pixels[i * 3]!;
      img.data[o + 1] = pixels[i * 3 + 1]!;
      img.data[o + 2] = pixels[i * 3 + 2]!;
    }
    img.data[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

interface WebGLProbe {
  getExtension(name: string): { readonly UNMASKED_RENDERER_WEBGL: number } | null;
  getParameter(name: number): unknown;
  readonly RENDERER: number;
}

/**
 * What WebGL this page can have (TF.js's webgl backend needs a context): none, or its renderer's name and
 * whether it is a software renderer (SwiftShader, llvmpipe…: on the CPU, slower than TF.js's wasm backend).
 */
export function webglRenderer(): { readonly name: string; readonly software: boolean } | null {
  try {
    const canvas = g.document.createElement('canvas');
    const gl = (canvas.getContext('webgl2') ?? canvas.getContext('webgl')) as WebGLProbe | null;
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) ?? '');
    return { name, software: /swiftshader|llvmpipe|softpipe|software|basic render/i.test(name) };
  } catch {
    return null;
  }
}
