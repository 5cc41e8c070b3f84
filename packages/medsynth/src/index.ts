export * from './runtime/errors.js';
