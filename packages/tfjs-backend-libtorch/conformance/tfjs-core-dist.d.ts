// tfjs-core's test modules and jasmine helpers ship as JavaScript without type declarations.
declare module '@tensorflow/tfjs-core/dist/*';
