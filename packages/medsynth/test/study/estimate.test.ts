// The --dry-run estimate: what each stage costs follows the grid (an existing run trains nothing but still
// samples its pool, at its own model's rate).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveStudyConfig } from '../../src/study/config.js';
import { estimateStudy } from '../../src/study/estimate.js';
import { studyJobs } from '../../src/study/grid.js';

const labels = Int32Array.from({ length: 1000 }, (_, i) => (i < 250 ? 0 : 1));

function estimate(generators: unknown[], runModels = new Map<string, string>()) {
  const config = resolveStudyConfig({
    preset: 'quick',
    data: { source: '/data/set.npz' },
    generators: generators as never,
    generator: { train: { minutes: 3 } },
    conditions: ['real', 'real+synthetic:2'],
    classifiers: ['cnn'],
    seeds: [0],
  });
  return estimateStudy(config, studyJobs(config), labels, 2, 200, 2, runModels);
}

test('a trained generator costs its minutes; an existing run costs only its pool, at its model’s rate', () => {
  const trained = estimate(['cgan']);
  assert.equal(trained.minutes.generators, 3);
  assert.equal(trained.generatorModels, 1);

  const gan = estimate([{ name: 'g', run: '/runs/gan' }], new Map([['/runs/gan', 'cgan']]));
  const ddpm = estimate([{ name: 'd', run: '/runs/ddpm' }], new Map([['/runs/ddpm', 'ddpm']]));
  assert.equal(gan.minutes.generators, 0);
  assert.equal(gan.generatorModels, 0);
  // 2000 synthetic images (ratio 2 of 1000): ≈ 1 s for a GAN, minutes for the diffusion model.
  assert.ok(gan.minutes.pools < 0.1, JSON.stringify(gan));
  assert.ok(ddpm.minutes.pools > 2 && ddpm.minutes.pools < 4, JSON.stringify(ddpm));
  assert.equal(ddpm.minutes.classifiers, gan.minutes.classifiers);
});
