// @ts-nocheck
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerLibtorchBackend } from './src/index.js';
registerLibtorchBackend();
async function main() {
  for (const be of ['cpu', 'libtorch']) {
    await tf.setBackend(be);
    const x = tf.ones([1, 2, 2, 1]);
    console.log(be, Array.from(await tf.avgPool(x, 1, [1, 2], 2).data()));
  }
}
main();
