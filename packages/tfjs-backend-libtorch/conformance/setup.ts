// Runs before any tfjs-core test module (imported first by the bundle entry): registers the libtorch backend
// and makes it the only test environment.
import '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { setTestEnvs } from '@tensorflow/tfjs-core/dist/jasmine_util';
import { registerLibtorchBackend, BACKEND_NAME } from '../src/index.js';

registerLibtorchBackend();
(setTestEnvs as (envs: unknown[]) => void)([
  { name: 'libtorch', backendName: BACKEND_NAME, isDataSync: true },
]);
