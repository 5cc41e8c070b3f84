import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { encodePng, tileImages } from '../../src/data/image/grid.js';
import {
  convertBitDepth,
  convertChannels,
  convertImagesChannels,
  greyOfRgb,
  isGreyContent,
  packImages,
  resolveTransform,
  transformImage,
} from '../../src/data/image/transform.js';
import type { RawImage } from '../../src/data/types.js';
import { ConfigError } from '../../src/runtime/errors.js';

const rgb = (w: number, h: number, f: (x: number, y: number, c: number) => number): RawImage => {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = f(x, y, c);
  return { width: w, height: h, channels: 3, data };
};

describe('channel and bit-depth conversion', () => {
  test('RGB → gray uses BT.601 luma; gray → RGB replicates', () => {
    const img = rgb(2, 1, (x, _y, c) => (x === 0 ? [255, 0, 0][c]! : [10, 200, 30][c]!));
    const g = convertChannels(img, 1);
    assert.deepEqual(
      [...g.data],
      [Math.round(0.299 * 255), Math.round(0.299 * 10 + 0.587 * 200 + 0.114 * 30)],
    );
    assert.deepEqual([...convertChannels(g, 3).data], [76, 76, 76, 124, 124, 124]);
  });

  test('grey content: RGB with equal channels is grey and keeps its values at 1 channel', () => {
    const greyRgb = rgb(3, 2, (x, y) => 40 * x + 90 * y);
    assert.ok(isGreyContent(greyRgb));
    assert.ok(isGreyContent(convertChannels(greyRgb, 1)), '1-channel images are grey');
    assert.ok(
      !isGreyContent(rgb(3, 2, (x, y, c) => (x === 2 && y === 1 && c === 2 ? 1 : 0))),
      'one pixel of colour',
    );
    const g = greyOfRgb(greyRgb);
    assert.equal(g.channels, 1);
    assert.deepEqual([...g.data], [0, 40, 80, 90, 130, 170]);
    assert.deepEqual([...g.data], [...convertChannels(greyRgb, 1).data], 'the same as luma');
    const wide: RawImage = { width: 1, height: 1, channels: 3, data: new Uint16Array([65535, 65535, 65535]) };
    assert.deepEqual([...greyOfRgb(wide).data], [65535]);
    assert.ok(greyOfRgb(wide).data instanceof Uint16Array);
  });

  test('convertImagesChannels converts every image of an array', () => {
    const arr = packImages([
      { width: 1, height: 1, channels: 1, data: new Uint8Array([7]) },
      { width: 1, height: 1, channels: 1, data: new Uint8Array([9]) },
    ]);
    const three = convertImagesChannels(arr, 3);
    assert.equal(three.channels, 3);
    assert.equal(three.count, 2);
    assert.deepEqual([...three.data], [7, 7, 7, 9, 9, 9]);
    assert.equal(convertImagesChannels(arr, 1), arr);
  });

  test('8 ↔ 16 bit maps 255 ↔ 65535 exactly and rounds', () => {
    const g: RawImage = { width: 3, height: 1, channels: 1, data: new Uint8Array([0, 128, 255]) };
    const w = convertBitDepth(g, 16);
    assert.ok(w.data instanceof Uint16Array);
    assert.deepEqual([...w.data], [0, 32896, 65535]);
    assert.deepEqual([...convertBitDepth(w, 8).data], [0, 128, 255]);
    const odd: RawImage = { width: 2, height: 1, channels: 1, data: new Uint16Array([385, 386]) };
    assert.deepEqual([...convertBitDepth(odd, 8).data], [1, 2]);
  });
});

describe('transformImage', () => {
  test('downsizing a constant image keeps its value; fit modes give the target size', async () => {
    const img = rgb(40, 20, () => 100);
    for (const fit of ['fill', 'cover', 'contain'] as const) {
      const out = await transformImage(img, resolveTransform({ size: 8, channels: 1, fit }));
      assert.equal(out.width, 8);
      assert.equal(out.height, 8);
      assert.equal(out.channels, 1);
      if (fit !== 'contain')
        assert.ok(
          out.data.every((v) => v === 100),
          `${fit}: ${[...out.data]}`,
        );
    }
    // contain pads the 2:1 image with black rows top and bottom.
    const c = await transformImage(img, resolveTransform({ size: 8, channels: 1, fit: 'contain' }));
    assert.equal(c.data[0], 0);
    assert.equal(c.data[4 * 8 + 4], 100);
  });

  test('box-average shrink of a checkerboard is mid-grey; 16-bit resize stays 16-bit', async () => {
    const board = rgb(32, 32, (x, y) => ((x + y) % 2 === 0 ? 0 : 255));
    const out = await transformImage(
      board,
      resolveTransform({ size: 4, channels: 1, interpolation: 'linear' }),
    );
    const mean = Array.from(out.data).reduce((a, b) => a + b, 0) / out.data.length;
    assert.ok(Math.abs(mean - 127.5) < 3, `mean ${mean}`);
    const g16: RawImage = { width: 4, height: 4, channels: 1, data: new Uint16Array(16).fill(40000) };
    const r16 = await transformImage(g16, resolveTransform({ size: 2, bitDepth: 16 }));
    assert.ok(r16.data instanceof Uint16Array);
    assert.ok(
      r16.data.every((v) => Math.abs(v - 40000) <= 1),
      [...r16.data].join(','),
    );
  });

  test('bad sizes are config errors naming the field', () => {
    assert.throws(
      () => resolveTransform({ size: 0 }),
      (e: unknown) => e instanceof ConfigError && /size\.height/.test(e.message),
    );
    assert.throws(() => resolveTransform({ size: [10, 1.5] }), ConfigError);
  });
});

describe('packImages and grids', () => {
  test('packs NHWC and refuses mixed sizes naming the image', () => {
    const a: RawImage = { width: 2, height: 1, channels: 1, data: new Uint8Array([1, 2]) };
    const b: RawImage = { width: 2, height: 1, channels: 1, data: new Uint8Array([3, 4]) };
    const p = packImages([a, b]);
    assert.deepEqual([...p.data], [1, 2, 3, 4]);
    assert.equal(p.count, 2);
    const c: RawImage = { width: 3, height: 1, channels: 1, data: new Uint8Array(3) };
    assert.throws(() => packImages([a, c], ['a.png', 'c.png']), /c\.png/);
  });

  test('a mismatch says what differs and which option makes the images agree', () => {
    const grey: RawImage = { width: 2, height: 1, channels: 1, data: new Uint8Array(2) };
    const colour: RawImage = { width: 2, height: 1, channels: 3, data: new Uint8Array(6) };
    const wide: RawImage = { width: 3, height: 1, channels: 1, data: new Uint8Array(3) };
    const deep: RawImage = { width: 2, height: 1, channels: 1, data: new Uint16Array(2) };
    const fails = (imgs: RawImage[], pattern: RegExp) =>
      assert.throws(
        () => packImages(imgs, ['a.jpeg', 'b.png']),
        (e: unknown) => e instanceof ConfigError && pattern.test(e.message) && /b\.png/.test(e.message),
      );
    fails(
      [grey, colour],
      /differ in channels; pass channels 1, 3 or auto \(--channels\).*expected 1 \(as a\.jpeg\), found 3/,
    );
    fails(
      [grey, wide],
      /differ in size; pass a target size \(--size\).*expected 1x2 \(as a\.jpeg\), found 1x3/,
    );
    fails([grey, deep], /differ in bit depth.*expected 8 bits \(as a\.jpeg\), found 16 bits/);
  });

  test('tileImages places cells with gaps and encodes a PNG that decodes back', async () => {
    const cell = (v: number): RawImage => ({
      width: 2,
      height: 2,
      channels: 1,
      data: new Uint8Array(4).fill(v),
    });
    const grid = tileImages([[cell(10), cell(20)], [cell(30)]], { gap: 1, background: 0 });
    assert.equal(grid.width, 7);
    assert.equal(grid.height, 7);
    assert.equal(grid.data[1 * 7 + 1], 10);
    assert.equal(grid.data[1 * 7 + 4], 20);
    assert.equal(grid.data[4 * 7 + 1], 30);
    assert.equal(grid.data[4 * 7 + 4], 0, 'ragged row leaves background');
    const png = await encodePng(grid);
    assert.equal((await sharp(png).metadata()).channels, 1, 'a gray PNG');
    const { data } = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([...data], [...grid.data]);
  });
});
