/**
 * A class-folder dataset that pools grey and colour files, as chest X-ray sets gathered from several sources
 * do: every image starts as grey content stored as RGB (like the Kermany JPEGs); in the `opaque` class half
 * the files become true 1-channel JPEGs and the other half get a red rectangle (real colour), unless
 * `colour` is false (then they stay RGB files of grey content). Built with sharp, seeded, in a temp folder.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

export interface MixedFolder {
  readonly root: string;
  readonly classNames: readonly string[];
  readonly total: number;
  /** Files stored with 1 channel. */
  readonly storedGrey: number;
  /** RGB files whose channels are equal everywhere. */
  readonly greyRgb: number;
  /** RGB files with a coloured rectangle. */
  readonly colour: number;
  /** Ids (`<class>/<file>`) by kind. */
  readonly ids: { readonly storedGrey: string[]; readonly greyRgb: string[]; readonly colour: string[] };
}

/** A seeded grey picture stored as RGB: a class-dependent pattern plus noise. */
function greyPicture(side: number, cls: number, seed: number): Buffer {
  let s = (seed * 2654435761 + cls * 97 + 1) >>> 0;
  const rand = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const cx = side * (0.3 + 0.4 * rand());
  const cy = side * (0.3 + 0.4 * rand());
  const data = Buffer.alloc(side * side * 3);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) {
      const d = Math.hypot(x - cx, y - cy) / side;
      const base = cls === 0 ? 200 * (1 - d) : 60 + 120 * Math.abs(Math.sin((x + y) / 5));
      const v = Math.max(0, Math.min(255, Math.round(base + 30 * (rand() - 0.5))));
      data.fill(v, (y * side + x) * 3, (y * side + x) * 3 + 3);
    }
  return data;
}

/** Writes the folder (see the module comment); `perClass` images in each of the two classes. */
export async function writeMixedFolder(
  root: string,
  options: { perClass?: number; side?: number; colour?: boolean } = {},
): Promise<MixedFolder> {
  const perClass = options.perClass ?? 12;
  const side = options.side ?? 48;
  const classNames = ['clear', 'opaque'];
  const ids = { storedGrey: [] as string[], greyRgb: [] as string[], colour: [] as string[] };
  const rect = await sharp({
    create: { width: Math.round(side / 3), height: Math.round(side / 4), channels: 3, background: '#d02020' },
  })
    .png()
    .toBuffer();
  for (const [k, cls] of classNames.entries()) {
    await mkdir(join(root, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const rgb = sharp(greyPicture(side, k, i), { raw: { width: side, height: side, channels: 3 } });
      const name = `img${String(i).padStart(3, '0')}`;
      let file: string;
      let bytes: Buffer;
      let kind: keyof typeof ids;
      if (cls === 'opaque' && i % 2 === 0) {
        [file, bytes, kind] = [
          `${name}.jpeg`,
          await rgb.toColourspace('b-w').jpeg().toBuffer(),
          'storedGrey',
        ];
      } else if (cls === 'opaque' && options.colour !== false) {
        const png = await rgb
          .composite([{ input: rect, left: 2, top: 2 }])
          .png()
          .toBuffer();
        [file, bytes, kind] = [`${name}.png`, png, 'colour'];
      } else {
        [file, bytes, kind] = [`${name}.png`, await rgb.png().toBuffer(), 'greyRgb'];
      }
      await writeFile(join(root, cls, file), bytes);
      ids[kind].push(`${cls}/${file}`);
    }
  }
  return {
    root,
    classNames,
    total: 2 * perClass,
    storedGrey: ids.storedGrey.length,
    greyRgb: ids.greyRgb.length,
    colour: ids.colour.length,
    ids,
  };
}
